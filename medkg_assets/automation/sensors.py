"""Re-ingestion: watch each namespace's source, register new namespaces, re-run what changed.

`namespace_source_sensor` adds dynamic partitions for new `config/namespaces/*.yaml` files and
requests an ingest run when a namespace's source fingerprint changes (run key = fingerprint, so
the same content never runs twice). `index_after_ingest_sensor` then requests the per-profile
index run for the resolved profile once that ingest run succeeded.
"""

import json

from dagster import (
    AddDynamicPartitionsRequest,
    DagsterRunStatus,
    RunRequest,
    RunStatusSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    sensor,
)

from medkg_assets.automation.jobs import Jobs
from medkg_assets.automation.k8s import profile_run_tags
from medkg_assets.automation.source_fingerprints import source_fingerprint
from medkg_assets.config import ConfigError, NamespaceConfig, load_namespaces
from medkg_assets.config.env_names import MEDKG_SENSOR_INTERVAL_S
from medkg_assets.orchestration.partitions import NAMESPACE_DIMENSION, namespace_profile_key
from medkg_assets.settings import Settings
from medkg_assets.tenancy import TENANT_TAG

REINGEST_TAG = "medkg/reingest"
NAMESPACE_TAG, PROFILE_TAG = "medkg/namespace", "medkg/profile"
FINGERPRINT_TAG = "medkg/source_fingerprint"
ROLLOUT_TAG = "medkg/rollout"


def reingest_tags(
    namespace: NamespaceConfig, profile_name: str, fingerprint: str | None = None
) -> dict[str, str]:
    tags = {
        REINGEST_TAG: "true",
        NAMESPACE_TAG: namespace.name,
        PROFILE_TAG: profile_name,
        TENANT_TAG: namespace.tenant_id,
    }
    if fingerprint:
        tags[FINGERPRINT_TAG] = fingerprint
    return tags


def build_sensors(settings: Settings, jobs: Jobs) -> list[SensorDefinition]:
    """The source sensor and the index-after-ingest sensor, reading `settings` at each tick."""

    @sensor(
        job=jobs.ingest,
        minimum_interval_seconds=int(settings.environ.get(MEDKG_SENSOR_INTERVAL_S, "60")),
        description="New namespaces become partitions; changed sources get an ingest run (keyed by content).",
    )
    def namespace_source_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
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
            return SkipReason(
                "no source changed" + (f"; unreadable: {', '.join(skipped)}" if skipped else "")
            )
        return SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=[AddDynamicPartitionsRequest(NAMESPACE_DIMENSION, new)]
            if new
            else [],
            cursor=json.dumps(cursor, sort_keys=True),
        )

    @run_status_sensor(
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[jobs.ingest],
        request_job=jobs.index,
        description="After a re-ingest run succeeds, index its namespace for the run's profile, and for "
        "EMBEDDING_PROFILE_EXPERIMENT too when the namespace is in the rollout set (canary).",
    )
    def index_after_ingest_sensor(context: RunStatusSensorContext) -> list[RunRequest] | SkipReason:
        tags = context.dagster_run.tags
        if tags.get(REINGEST_TAG) != "true":
            return SkipReason("not a re-ingestion run")
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
                        **profile_run_tags(profile, jobs.executor),
                    },
                )
            )
        return requests

    return [namespace_source_sensor, index_after_ingest_sensor]
