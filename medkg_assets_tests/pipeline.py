"""Helpers that run pipeline stages through Dagster's own `materialize`.

Each call builds the definitions from the test's current environment, as the code location
would; `RESOURCE_OVERRIDES` (monkeypatch it) swaps a resource for one test.
"""

import json
from typing import Any

import yaml
from dagster import AssetSelection, Definitions, materialize

from medkg_assets.definitions import build_definitions
from medkg_assets.orchestration.partitions import namespace_profile_key
from medkg_assets_tests.conftest import current_settings

INGEST = AssetSelection.groups("ingest")
SERVING = AssetSelection.groups("serving")
RESOURCE_OVERRIDES: dict[str, Any] = {}


def definitions() -> Definitions:
    """The code location for this test's settings, with `RESOURCE_OVERRIDES` applied."""
    defs = build_definitions(current_settings())
    if not RESOURCE_OVERRIDES:
        return defs
    return Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        sensors=defs.sensors,
        schedules=defs.schedules,
        resources={**(defs.resources or {}), **RESOURCE_OVERRIDES},
    )


def resources() -> dict[str, Any]:
    return dict(definitions().resources or {})


def run_reader_stage(stage, ctx, options):
    """Call a stage that reads a built partition (`tune_fusion`, `adapt_reranker`, …) directly,
    with the code location's own resources."""
    found = resources()
    return stage(
        ctx, options, found["dense_encoder"], found["sparse_encoder"], found["reranker"], found["lucene"]
    )


def _all_assets_and_checks(defs: Definitions):
    return list(defs.assets or []) + list(defs.asset_checks or [])


def ingest(instance, namespace):
    defs = definitions()
    return materialize(
        _all_assets_and_checks(defs),
        instance=instance,
        partition_key=namespace,
        selection=INGEST,
        resources=defs.resources,
    )


def index(instance, namespace, profile, selection=None, raise_on_error=True, tags=None, run_config=None):
    """Materialise the per-profile stages (default: everything after ingest) with their checks."""
    selection = selection or (AssetSelection.all(include_sources=False) - INGEST - SERVING)
    defs = definitions()
    return materialize(
        _all_assets_and_checks(defs),
        instance=instance,
        partition_key=str(namespace_profile_key(namespace, profile)),
        selection=selection,
        resources=defs.resources,
        raise_on_error=raise_on_error,
        tags=tags,
        run_config=run_config,
    )


def metadata(result, asset_name):
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset_name]]
    assert len(events) == 1, f"{asset_name} materialised {len(events)} times"
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def check_results(result):
    """{check name: (passed, metadata)} for every check evaluated in the run."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            out[data.check_name] = (data.passed, {k: v.value for k, v in data.metadata.items()})
    return out


def step_failure(result):
    # The first failed step (every shard of a sharded stage may fail the same way).
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data


def edit_profiles(config_dir, mutate):
    """Change `embedding_profiles.yaml` in the test's config copy (the next settings read it)."""
    path = config_dir / "embedding_profiles.yaml"
    data = yaml.safe_load(path.read_text())
    mutate(data["profiles"])
    path.write_text(yaml.safe_dump(data))


def release_checks(instance, namespace, profile):
    """Re-evaluate the partition's checks without recomputing assets."""
    job = definitions().resolve_job_def("release_checks_job")
    # A checks-only job carries no partitions definition of its own: pass the partition as tags.
    return job.execute_in_process(
        instance=instance, raise_on_error=False, tags=partition_tags(namespace, profile)
    )


def index_requests_after_ingest(instance, request):
    """Run `ingest_job` for a re-ingest `request` of the source sensor, then evaluate
    `index_after_ingest_sensor` on that run: (ingest result, the index run requests)."""
    from dagster import build_run_status_sensor_context

    defs = definitions()
    result = defs.resolve_job_def("ingest_job").execute_in_process(
        partition_key=request.partition_key, instance=instance, tags=request.tags
    )
    context = build_run_status_sensor_context(
        sensor_name="index_after_ingest_sensor",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_success_event(),
    )
    return result, defs.resolve_sensor_def("index_after_ingest_sensor")(context)


def partition_tags(namespace, profile):
    return {
        "dagster/partition": str(namespace_profile_key(namespace, profile)),
        "dagster/partition/namespace": namespace,
        "dagster/partition/profile": profile,
    }


def chunk_records(namespace="tiny"):
    """The current chunk version's rows as dicts, in shard order (read from its Parquet shards)."""
    from medkg_assets.storage.layout import ArtifactLayout
    from medkg_assets.text.chunk_shards import iter_chunk_shards

    directory = ArtifactLayout(current_settings().data_dir).chunks(namespace)
    return [c.to_record() for _, chunks in iter_chunk_shards(directory) for c in chunks]


def tree_bytes(directory):
    """Every file under a directory with its bytes: equal trees, equal dicts."""
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


def add_judged_sets(config_dir):
    """Train questions (short) and a second dev set of long consumer-style messages, about the
    tiny corpus's three answers, beside its MedQuAD dev set."""
    data = config_dir.parent / "data" / "tiny"
    docs = [json.loads(line) for line in (data / "corpus.jsonl").read_text().splitlines()]
    train, consumer = [], []
    for i, doc in enumerate(docs):
        focus = doc["title"] or doc["text"].split(".")[0]
        train += [(f"T{i}a", f"What is {focus}?", doc["_id"]), (f"T{i}b", f"{focus} treatment", doc["_id"])]
        consumer.append(
            (
                f"C{i}",
                f"SUBJECT: question about {focus}. Hello, my husband was told last week he may have "
                f"{focus.lower()} and we are both worried. What does it mean, and what can we do? Thanks",
                doc["_id"],
            )
        )
    with (data / "queries.jsonl").open("a") as out:
        for query_id, text, _ in train + consumer:
            out.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    for name, rows in (("train", train), ("consumer", consumer)):
        (data / "qrels" / f"{name}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t2\n" for q, _, d in rows)
        )
    namespace = config_dir / "namespaces" / "tiny.yaml"
    kept = [line for line in namespace.read_text().splitlines(True) if not line.startswith("eval:")]
    namespace.write_text(
        "".join(kept)
        + "eval:\n"
        + "  - {name: medquad, queries: data/tiny/queries.jsonl, qrels: data/tiny/qrels/dev.tsv,\n"
        + "     train_qrels: data/tiny/qrels/train.tsv}\n"
        + "  - {name: consumer, queries: data/tiny/queries.jsonl, qrels: data/tiny/qrels/consumer.tsv}\n"
    )
