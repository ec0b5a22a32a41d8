"""`source_documents` on a folder source: ignored files and refused links reach log and metadata."""

from dagster import materialize

from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import definitions


def folder_namespace(config_dir, policy="fail"):
    """Point the `tiny` namespace at a folder of text files (one upper-case suffix, one .yml)."""
    docs = config_dir.parent / "data" / "folder"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("Asthma narrows the airways.")
    (docs / "B.TXT").write_text("Bronchitis inflames the bronchi.")
    (docs / "sub" / "c.markdown").write_text("# Croup\n\nA barking cough.")
    (docs / "settings.yml").write_text("not: a document\n")
    (docs / "sub" / "scan.pdf").write_bytes(b"%PDF-1.4")
    spec = config_dir / "namespaces" / "tiny.yaml"
    lines = [ln for ln in spec.read_text().splitlines() if not ln.startswith("source:")]
    spec.write_text("\n".join([f"source: {{path: {docs}}}", *lines, f"on_bad_record: {policy}"]) + "\n")
    return docs


def run(instance):
    return materialize(
        [definitions().get_assets_def("source_documents")],
        instance=instance,
        partition_key="tiny",
        raise_on_error=False,
        resources={"telemetry": TelemetryResource(data_dir=str(current_settings().data_dir))},
    )


def materialisation(result):
    [event] = result.get_asset_materialization_events()
    return event.materialization.metadata


def test_ignored_files_are_counted_listed_and_logged(config_dir, instance):
    folder_namespace(config_dir)
    result = run(instance)
    assert result.success
    meta = materialisation(result)
    assert meta["documents"].value == 3
    assert meta["ignored_files"].value == 2
    assert meta["ignored"].value.splitlines() == ["settings.yml", "sub/scan.pdf"]
    logs = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if "ignored 2 file(s)" in entry.user_message
    ]
    assert len(logs) == 1 and "settings.yml" in logs[0] and "sub/scan.pdf" in logs[0]


def test_nothing_ignored_says_none(config_dir, instance):
    result = run(instance)
    meta = materialisation(result)
    assert meta["ignored_files"].value == 0 and meta["ignored"].value == "none"


def test_link_out_of_the_source_fails_and_keeps_previous_documents(config_dir, instance, tmp_path):
    docs = folder_namespace(config_dir)
    assert run(instance).success
    documents = ArtifactLayout(current_settings().data_dir).documents("tiny")
    before = documents.read_bytes()
    (tmp_path / "secret.txt").write_text("password=hunter2")
    (docs / "leak.txt").symlink_to(tmp_path / "secret.txt")
    result = run(instance)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    assert "leak.txt: symlink to" in message and "outside the source folder" in message
    assert "hunter2" not in message
    assert documents.read_bytes() == before


def test_link_out_of_the_source_is_skipped_and_listed(config_dir, instance, tmp_path):
    docs = folder_namespace(config_dir, policy="skip")
    (tmp_path / "secret.txt").write_text("password=hunter2")
    (docs / "leak.txt").symlink_to(tmp_path / "secret.txt")
    result = run(instance)
    assert result.success
    meta = materialisation(result)
    assert meta["documents"].value == 3 and meta["skipped_records"].value == 1
    assert "leak.txt" in meta["skipped"].value
    assert b"hunter2" not in ArtifactLayout(current_settings().data_dir).documents("tiny").read_bytes()
