"""`rollback_job`: point a namespace back at the profile it served before; nothing is recomputed."""

import time

from dagster import AssetMaterialization, Config, Failure, OpExecutionContext, job, op

from medkg_assets.assets.context import guard_access, layout
from medkg_assets.assets.serving import point_readers, serving_metadata
from medkg_assets.resources.opensearch import OpenSearchResource
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.rollout.serving import NothingToRollBackError, ServingState, roll_back
from medkg_assets.settings import get_config
from medkg_assets.tenancy import PUBLISH_SCOPE


class RollbackConfig(Config):
    namespace: str


@op(description="Make the previous live profile of a namespace live again and flip its readers.")
def roll_back_serving(
    context: OpExecutionContext,
    config: RollbackConfig,
    telemetry: TelemetryResource,
    opensearch: OpenSearchResource,
) -> None:
    started = time.perf_counter()
    settings = get_config()
    namespace = settings.namespace(config.namespace).name
    guard_access(context, telemetry, [namespace], PUBLISH_SCOPE)
    path = layout(settings).serving_state(namespace)
    state = ServingState.load(path, namespace)
    try:
        restored = roll_back(state)
    except NothingToRollBackError as error:
        raise Failure(description=str(error)) from error
    readers = point_readers(opensearch, namespace, restored.live)
    restored.save(path)
    elapsed = time.perf_counter() - started
    outcome = f"rolled back from {state.live.profile} to {restored.live.profile}"
    context.log.info(f"{namespace}: {outcome} in {elapsed:.2f}s; {readers}")
    context.log_event(
        AssetMaterialization(
            asset_key="serving_alias",
            partition=namespace,
            metadata={**serving_metadata(restored, outcome, readers), "rollback_seconds": round(elapsed, 3)},
        )
    )


@job(description="Roll a namespace's serving alias back to its previous profile (config: namespace).")
def rollback_job():
    roll_back_serving()
