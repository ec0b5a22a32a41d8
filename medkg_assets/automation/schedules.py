"""Periodic full re-ingestion of every namespace for the baseline profile."""

from collections.abc import Iterator

from dagster import DefaultScheduleStatus, RunRequest, ScheduleDefinition, ScheduleEvaluationContext, schedule

from medkg_assets.automation.jobs import Jobs
from medkg_assets.automation.sensors import reingest_tags
from medkg_assets.settings import Settings


def build_schedules(settings: Settings, jobs: Jobs) -> list[ScheduleDefinition]:
    automation = settings.environment.automation

    @schedule(
        job=jobs.ingest,
        cron_schedule=automation.reingest_cron,
        default_status=DefaultScheduleStatus.RUNNING
        if automation.reingest_schedule_enabled
        else DefaultScheduleStatus.STOPPED,
        description="Re-ingest every namespace for the baseline profile (the index sensor chains the rest).",
    )
    def full_reingest_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
        stamp = context.scheduled_execution_time.isoformat()
        for name, namespace in settings.namespaces.items():
            yield RunRequest(
                run_key=f"{name}:{stamp}",
                partition_key=name,
                tags=reingest_tags(namespace, settings.resolution.baseline),
            )

    return [full_reingest_schedule]
