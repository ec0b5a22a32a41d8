"""Backfills through Dagster's own machinery (GraphQL `launchPartitionBackfill` against a running
`dagster dev`, executed by its daemon) with a BackfillPolicy of 2 partitions per run, and the asset
graph in a real headless Chromium."""

import shutil
import subprocess
import time

import pytest

from medkg_assets_tests.dagster_server import start_dagster_dev

pytestmark = pytest.mark.slow
PROFILES = ("minilm_cpu", "minilm_hnsw_cpu")
STAGES = ("dense_embeddings", "faiss_index")

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status runs(limit: 100) { runId status tags { key value } } }
  }
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from start_dagster_dev(tmp_path_factory.mktemp("dagster-dev"), partitions_per_run=2)


def backfill(server, partitions_by_asset: dict[str, list[str]], timeout_s: int = 600) -> list[dict]:
    params = {
        "partitionsByAssets": [
            {
                "assetKey": {"path": [asset]},
                "partitions": {"ranges": [{"start": key, "end": key} for key in keys]},
            }
            for asset, keys in partitions_by_asset.items()
        ],
        "title": "medkg test backfill",
    }
    launched = server.graphql(LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = server.graphql(STATUS, {"id": launched["backfillId"]})["partitionBackfillOrError"]
        if state["status"] in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"):
            return state
        time.sleep(3)
    pytest.fail(
        f"backfill {launched['backfillId']} still {state['status']} after {timeout_s}s; "
        f"log: {server.log.read_text()[-2000:]}"
    )


def per_profile(namespaces, profiles):
    keys = [f"{n}|{p}" for n in namespaces for p in profiles]
    return {
        **{asset: list(namespaces) for asset in ("source_documents", "chunks")},
        **{asset: keys for asset in STAGES},
    }


def assert_all_succeeded(state, server, expected_partitions):
    assert state["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), state
    assert state["runs"] and all(run["status"] == "SUCCESS" for run in state["runs"]), state["runs"]
    for key in expected_partitions:
        namespace, profile = key.split("|")
        assert (
            server.data_dir / "namespaces" / namespace / "profiles" / profile / "faiss" / "CURRENT"
        ).exists()


def partition_ranges(state) -> set[tuple[str, str]]:
    """(start, end) of every run's partition range; a one-partition run counts as (key, key)."""
    ranges = set()
    for run in state["runs"]:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        if "dagster/partition" in tags:
            ranges.add((tags["dagster/partition"], tags["dagster/partition"]))
        else:
            ranges.add(
                (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"])
            )
    return ranges


def test_backfill_one_namespace_across_all_profiles(server):
    state = backfill(server, per_profile(["tiny"], PROFILES))
    assert_all_succeeded(state, server, [f"tiny|{p}" for p in PROFILES])
    # 2 partitions per run: the namespace's ingest run, then both profiles in one run
    assert partition_ranges(state) == {("tiny", "tiny"), (f"tiny|{PROFILES[0]}", f"tiny|{PROFILES[1]}")}


def test_backfill_one_profile_across_all_namespaces(server):
    state = backfill(server, per_profile(["tiny", "tiny2"], ["minilm_cpu"]))
    assert_all_succeeded(state, server, ["tiny|minilm_cpu", "tiny2|minilm_cpu"])
    assert partition_ranges(state) == {("tiny", "tiny2"), ("tiny|minilm_cpu", "tiny2|minilm_cpu")}


@pytest.mark.skipif(
    not shutil.which("chromium"), reason="Debian chromium not installed (make test installs it)"
)
def test_asset_graph_lists_the_medkg_assets_and_checks_in_chromium(server, tmp_path):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=20000",
    ]
    started = time.monotonic()
    # The catalog renders only the rows in view: a tall window keeps every asset in the DOM.
    page = subprocess.run(
        ["chromium", *flags, "--window-size=1400,3000", "--dump-dom", f"{server.url}/assets?view=flat"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    subprocess.run(
        [
            "chromium",
            *flags,
            "--window-size=1400,900",
            f"--screenshot={tmp_path / 'assets.png'}",
            f"{server.url}/asset-groups",
        ],
        capture_output=True,
        timeout=90,
    )
    checks = subprocess.run(
        ["chromium", *flags, "--dump-dom", f"{server.url}/assets/faiss_index?view=checks"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert time.monotonic() - started < 60 * 3
    for asset in (
        "source_documents",
        "chunks",
        "dense_embeddings",
        "faiss_index",
        "sparse_vectors",
        "sparse_index",
        "opensearch_mapping",
        "adapted_reranker",
        "fusion_config",
        "rerank_manifest",
        "processing_summary",
        "profile_ab_report",
        "serving_alias",
    ):
        assert asset in page.stdout, f"{asset} not in the asset catalog page"
    assert "faiss_self_recall" in checks.stdout and "dense_dimension_matches_profile" in checks.stdout
    assert (tmp_path / "assets.png").stat().st_size > 10_000
