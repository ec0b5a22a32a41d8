"""Re-ingestion: watch each namespace's source, register new namespaces, re-run what changed.

`namespace_source_sensor` adds dynamic partitions for new `config/namespaces/*.yaml` files and
requests an ingest run when a namespace's source fingerprint changes (run key = fingerprint, so
the same content never runs twice). `index_after_ingest_sensor` then requests the per-profile
index run for the resolved profile once that ingest run succeeded.
"""

import json
import os

from dagster import (
    AddDynamicPartitionsRequest,
    DagsterRunStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    sensor,
)

from medkg_assets.automation.jobs import executor_kind, index_job, ingest_job
from medkg_assets.automation.k8s import profile_run_tags
from medkg_assets.automation.source_fingerprints import source_fingerprint
from medkg_assets.config import ConfigError, load_namespaces
from medkg_assets.partitions import NAMESPACE_DIMENSION, namespace_profile_key
from medkg_assets.settings import get_config
from medkg_assets.tenancy import TENANT_TAG

SENSOR_INTERVAL_ENV = "MEDKG_SENSOR_INTERVAL_S"
REINGEST_TAG = "medkg/reingest"
NAMESPACE_TAG, PROFILE_TAG = "medkg/namespace", "medkg/profile"
FINGERPRINT_TAG = "medkg/source_fingerprint"
ROLLOUT_TAG = "medkg/rollout"


def reingest_tags(namespace, profile_name: str, fingerprint: str | None = None) -> dict[str, str]:
    tags = {
        REINGEST_TAG: "true",
        NAMESPACE_TAG: namespace.name,
        PROFILE_TAG: profile_name,
        TENANT_TAG: namespace.tenant_id,
    }
    if fingerprint:
        tags[FINGERPRINT_TAG] = fingerprint
    return tags


@sensor(
    job=ingest_job,
    minimum_interval_seconds=int(os.environ.get(SENSOR_INTERVAL_ENV, "60")),
    description="New namespaces become partitions; changed sources get an ingest run (keyed by content).",
)
def namespace_source_sensor(context: SensorEvaluationContext):
    settings = get_config()
    try:  # re-read the registry each tick so new namespace files are seen without a reload
        namespaces = load_namespaces(settings.config_dir / "namespaces", settings.project_root)
    except ConfigError as error:
        return SkipReason(f"namespace registry unreadable: {error}")
    known = set(context.instance.get_dynamic_partitions(NAMESPACE_DIMENSION))
    new = sorted(set(namespaces) - known)
    cursor = json.loads(context.cursor) if context.cursor else {}
    profile = settings.resolution.profile
    run_requests, skipped = [], []
    for name, namespace in namespaces.items():
        try:
            fingerprint = source_fingerprint(namespace.source_path)
        except OSError as error:  # unreadable or missing source: report, keep going with the others
            context.log.warning(
                f"namespace {name}: source {namespace.source_path} unreadable ({error}); skipped"
            )
            skipped.append(name)
            continue
        if cursor.get(name) == fingerprint:
            continue
        cursor[name] = fingerprint
        run_requests.append(
            RunRequest(
                run_key=f"{name}:{fingerprint[:16]}",
                partition_key=name,
                tags=reingest_tags(namespace, profile, fingerprint),
            )
        )
    if new:
        context.log.info(f"new namespaces: {', '.join(new)}")
    if not run_requests and not new:
        return SkipReason("no source changed" + (f"; unreadable: {', '.join(skipped)}" if skipped else ""))
    return SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[AddDynamicPartitionsRequest(NAMESPACE_DIMENSION, new)] if new else [],
        cursor=json.dumps(cursor, sort_keys=True),
    )


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    monitored_jobs=[ingest_job],
    request_job=index_job,
    description="After a re-ingest run succeeds, index its namespace for the run's profile, and for "
    "EMBEDDING_PROFILE_EXPERIMENT too when the namespace is in the rollout set (canary).",
)
def index_after_ingest_sensor(context):
    tags = context.dagster_run.tags
    if tags.get(REINGEST_TAG) != "true":
        return SkipReason("not a re-ingestion run")
    settings = get_config()
    namespace = tags[NAMESPACE_TAG]
    requests = []
    for name in settings.profiles_for(namespace, tags[PROFILE_TAG]):
        profile = settings.profiles.get(name)
        requests.append(
            RunRequest(
                run_key=f"{context.dagster_run.run_id}:{profile.name}",
                partition_key=str(namespace_profile_key(namespace, profile.name)),
                tags={
                    **{k: v for k, v in tags.items() if k.startswith("medkg/")},
                    PROFILE_TAG: profile.name,
                    ROLLOUT_TAG: "candidate" if name == settings.candidate_profile else "baseline",
                    **profile_run_tags(profile, executor_kind()),
                },
            )
        )
    return requests


SENSORS = [namespace_source_sensor, index_after_ingest_sensor]
