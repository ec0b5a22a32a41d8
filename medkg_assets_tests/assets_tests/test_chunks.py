"""`source_documents` and `chunks` materialised through Dagster's own API."""

from dagster import materialize

from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets_tests import pipeline
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import chunk_records, tree_bytes


def stage():
    defs = pipeline.definitions()
    return [defs.get_assets_def("source_documents"), defs.get_assets_def("chunks")]


def run(instance, namespace, raise_on_error=True):
    return materialize(
        stage(),
        instance=instance,
        partition_key=namespace,
        raise_on_error=raise_on_error,
        resources={"telemetry": TelemetryResource(data_dir=str(current_settings().data_dir))},
    )


def metadata_of(result, asset_name):
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset_name]]
    return event.materialization.metadata


def test_sample_namespace_materialises_with_counts_and_metadata(instance):
    result = run(instance, "medquad_sample")
    assert result.success
    docs_meta, chunk_meta = metadata_of(result, "source_documents"), metadata_of(result, "chunks")
    assert docs_meta["documents"].value == 360
    assert docs_meta["skipped_records"].value == 0
    assert chunk_meta["documents"].value == 360
    assert chunk_meta["chunks"].value >= 360
    assert chunk_meta["embedding_profile_experiment"].value == "none"
    assert "| min | median | max |" in chunk_meta["tokens"].value
    records = chunk_records("medquad_sample")
    assert len(records) == chunk_meta["chunks"].value
    assert {r["tenant_id"] for r in records} == {"nih-public"}
    assert all(r["token_count"] <= 200 for r in records)


def test_rematerialising_unchanged_input_is_byte_identical(config_dir, instance):
    run(instance, "tiny")
    path = ArtifactLayout(current_settings().data_dir).chunks("tiny")
    first = tree_bytes(path)
    run(instance, "tiny")
    assert ArtifactLayout(current_settings().data_dir).chunks("tiny") == path and tree_bytes(path) == first


def test_bad_record_fails_the_run_and_keeps_the_previous_chunks(config_dir, instance):
    run(instance, "tiny")
    paths = ArtifactLayout(current_settings().data_dir)
    before = tree_bytes(paths.chunks("tiny")), paths.documents("tiny").read_bytes()
    corpus = config_dir.parent / "data" / "tiny" / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + '{"_id": "broken", "text": \n')
    result = run(instance, "tiny", raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    assert "corpus.jsonl:4" in message and "malformed JSON" in message
    assert (tree_bytes(paths.chunks("tiny")), paths.documents("tiny").read_bytes()) == before


def test_skip_policy_lists_skipped_records_in_metadata(config_dir, instance):
    spec = config_dir / "namespaces" / "tiny.yaml"
    spec.write_text(spec.read_text() + "on_bad_record: skip\n")
    corpus = config_dir.parent / "data" / "tiny" / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + '{"_id": "empty", "text": ""}\n')
    result = run(instance, "tiny")
    meta = metadata_of(result, "source_documents")
    assert meta["documents"].value == 3 and meta["skipped_records"].value == 1
    assert "empty text" in meta["skipped"].value


def test_unknown_namespace_fails_naming_the_config_file(instance):
    instance.add_dynamic_partitions("namespace", ["nope"])
    result = run(instance, "nope", raise_on_error=False)
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.to_string()
    assert "unknown namespace 'nope'" in message and "namespaces/nope.yaml" in message
