"""Which release checks of a namespace × profile did not pass, read from the Dagster instance.

Through the instance's storage methods and public event types only (no `dagster._core` import):
the per-partition status of each check comes from `get_asset_check_partition_info`; a failed
check counts only with ERROR severity, read from its evaluation event in the run that ran it.
"""

from __future__ import annotations

from dagster import AssetCheckEvaluation, AssetCheckKey, AssetCheckSeverity, DagsterEventType, DagsterInstance

from medkg_assets.topology import RELEASE_CHECKS

RELEASE_CHECK_KEYS = [AssetCheckKey.from_user_string(f"{asset}:{check}") for asset, check in RELEASE_CHECKS]


def _failed_severity(
    instance: DagsterInstance, run_id: str, key: AssetCheckKey, partition: str
) -> str | None:
    """The severity of the check's failed evaluation for `partition` in run `run_id`."""
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        event = record.dagster_event
        evaluation = event.event_specific_data if event else None
        if (
            isinstance(evaluation, AssetCheckEvaluation)
            and evaluation.asset_check_key == key
            and evaluation.partition in (partition, None)
            and not evaluation.passed
        ):
            return evaluation.severity.value
    return None


def failing_checks(instance: DagsterInstance, namespace: str, profile: str) -> list[str]:
    """Release checks whose latest evaluation for this namespace × profile did not pass (or never ran)."""
    partition = f"{namespace}|{profile}"
    infos = {
        info.check_key: info
        for info in instance.event_log_storage.get_asset_check_partition_info(
            RELEASE_CHECK_KEYS, partition_keys=[partition]
        )
        if info.partition_key == partition
    }
    failing = []
    for key in RELEASE_CHECK_KEYS:
        info = infos.get(key)
        status = info.latest_execution_status.value if info else None
        if status in (None, "PLANNED"):
            failing.append(f"{key.name} (not evaluated)")
        elif status == "FAILED":
            assert info is not None
            severity = _failed_severity(instance, info.latest_planned_run_id, key, partition)
            if severity in (None, AssetCheckSeverity.ERROR.value):
                failing.append(key.name)
    return failing
