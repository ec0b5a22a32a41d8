"""One Dagster step per shard, through the multiprocess executor: a failing shard fails alone, and
re-executing the run from failure (the UI's "Re-execute from failure") redoes only that shard."""

import pytest
from dagster import AssetKey, DagsterInstance, ReexecutionOptions, execute_job, reconstructable

from medkg_assets.orchestration.partitions import namespace_profile_key, register_namespaces
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets.storage.shards import ShardManifest
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.jobs_for_tests import index_job
from medkg_assets_tests.pipeline import ingest

pytestmark = pytest.mark.slow
SHARD_STEP = "dense_embeddings.dense_embeddings_shard"
TAGS = {
    "dagster/partition/namespace": "tiny",
    "dagster/partition/profile": "minilm_cpu",
    "dagster/partition": str(namespace_profile_key("tiny", "minilm_cpu")),
}


def steps(result, event_type: str) -> set[str]:
    return {e.step_key for e in result.all_events if e.event_type_value == event_type and e.step_key}


def test_a_failed_shard_fails_alone_and_reexecution_from_failure_redoes_only_it(config_dir, tmp_path):
    (tmp_path / "dagster_home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        register_namespaces(instance, current_settings().namespaces)
        ingest(instance, "tiny")
        layout = ArtifactLayout(current_settings().data_dir)
        version = layout.chunks("tiny")
        shards = ShardManifest.load(version).shards
        assert len(shards) >= 2
        broken = version / shards[0].file
        good = broken.read_bytes()
        broken.write_bytes(b"not parquet")  # one damaged shard: only its step can fail
        with execute_job(
            reconstructable(index_job),
            instance=instance,
            tags=TAGS,
            asset_selection=[AssetKey("dense_embeddings")],
            raise_on_error=False,
        ) as first:
            assert not first.success
            failed = steps(first, "STEP_FAILURE")
            done = {s for s in steps(first, "STEP_SUCCESS") if s.startswith(SHARD_STEP)}
            first_run = first.run_id
        assert failed == {f"{SHARD_STEP}[{shards[0].name.replace('-', '_')}]"}  # no retry of bad input
        assert len(done) == len(shards) - 1  # the other shards finished, each in its own step
        assert layout.dense("tiny", "minilm_cpu").current is None  # nothing published

        broken.write_bytes(good)
        with execute_job(
            reconstructable(index_job),
            instance=instance,
            tags=TAGS,  # the UI's re-execution keeps the parent run's partition tags
            reexecution_options=ReexecutionOptions.from_failure(first_run, instance),
        ) as second:
            assert second.success
            redone = steps(second, "STEP_SUCCESS")
        assert {s for s in redone if s.startswith(SHARD_STEP)} == failed
        assert "dense_embeddings.dense_embeddings_publish" in redone
        assert layout.dense("tiny", "minilm_cpu").current is not None
