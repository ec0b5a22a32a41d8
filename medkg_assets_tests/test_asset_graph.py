"""The asset graph as operators see it, pinned by a snapshot: an unintended change fails here.

Asset keys, partitions, deps and their mappings, checks (blocking, extra deps), kinds, pools, op
tags, code versions, backfill policy, jobs and their executors, sensors, schedules and resources.
After an intended change, review the diff and run `pytest --snapshot-update` on this file.
"""

from typing import Any

import pytest
from dagster import Definitions, MultiPartitionsDefinition, OpDefinition
from syrupy.extensions.json import JSONSnapshotExtension

from medkg_assets.definitions import build_definitions
from medkg_assets.settings import Settings


def _partitions(partitions_def: Any) -> Any:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, MultiPartitionsDefinition):
        return {dim.name: _partitions(dim.partitions_def) for dim in partitions_def.partitions_defs}
    name = getattr(partitions_def, "name", None)
    if name is not None:  # dynamic: the keys live in the instance
        return f"dynamic:{name}"
    return list(partitions_def.get_partition_keys())


def _op_tags(assets_def: Any) -> dict[str, Any]:
    """An op-backed asset's op tags; for a graph-backed one, each op's tags and retry policy."""
    node = assets_def.node_def
    if isinstance(node, OpDefinition):
        return dict(sorted(node.tags.items()))
    return {
        op.name: {"tags": dict(sorted(op.tags.items())), "pool": op.pool, "retry": str(op.retry_policy)}
        for op in sorted(node.iterate_op_defs(), key=lambda o: o.name)
    }


def describe_asset_graph(defs: Definitions) -> dict[str, Any]:
    """Everything about the graph a UI user, a backfill or a Kubernetes pod depends on."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        spec = node.assets_def.specs_by_key[key]
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "pools": sorted(node.pools),
            "op_tags": _op_tags(node.assets_def) if node.assets_def.is_executable else {},
            "code_version": node.code_version,
            "partitions": _partitions(node.partitions_def),
            "backfill_policy": str(node.backfill_policy) if node.backfill_policy else None,
            "deps": {
                dep.asset_key.to_user_string(): type(dep.partition_mapping).__name__
                if dep.partition_mapping
                else None
                for dep in sorted(spec.deps, key=lambda d: d.asset_key.to_user_string())
            },
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        [check_spec] = [s for s in defs.get_asset_checks_def(check_key).check_specs if s.key == check_key]
        checks[f"{check_key.asset_key.to_user_string()}:{check_key.name}"] = {
            "blocking": check_spec.blocking,
            "additional_deps": sorted(d.asset_key.to_user_string() for d in check_spec.additional_deps),
        }
    jobs = {
        job.name: {
            "executor": job.executor_def.name,
            "assets": sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys),
        }
        for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name)
        if not job.name.startswith("__")
    }
    return {
        "assets": assets,
        "checks": checks,
        "jobs": jobs,
        "sensors": sorted((s.name, s.job_name) for s in defs.sensors or []),
        "schedules": sorted(
            (s.name, s.job_name, s.cron_schedule, s.default_status.value) for s in defs.schedules or []
        ),
        "resources": sorted((name, type(value).__name__) for name, value in (defs.resources or {}).items()),
    }


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


def test_asset_graph_matches_its_snapshot(snapshot_json):
    assert describe_asset_graph(build_definitions(Settings())) == snapshot_json
