"""Periodic full re-ingestion of every namespace for the baseline profile."""

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, schedule

from medkg_assets.automation.jobs import ingest_job
from medkg_assets.automation.sensors import reingest_tags
from medkg_assets.settings import get_config

_environment = get_config().environment


@schedule(
    job=ingest_job,
    cron_schedule=_environment.automation.reingest_cron,
    default_status=DefaultScheduleStatus.RUNNING
    if _environment.automation.reingest_schedule_enabled
    else DefaultScheduleStatus.STOPPED,
    description="Re-ingest every namespace for the baseline profile (the index sensor chains the rest).",
)
def full_reingest_schedule(context: ScheduleEvaluationContext):
    settings = get_config()
    stamp = context.scheduled_execution_time.isoformat()
    for name, namespace in settings.namespaces.items():
        yield RunRequest(
            run_key=f"{name}:{stamp}",
            partition_key=name,
            tags=reingest_tags(namespace, settings.resolution.baseline),
        )


SCHEDULES = [full_reingest_schedule]
