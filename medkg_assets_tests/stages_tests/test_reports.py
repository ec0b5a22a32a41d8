"""Reports carry typed figures; their UI metadata becomes Dagster's types only at the edge."""

from dagster import MetadataValue

from medkg_assets.orchestration.metadata import dagster_metadata
from medkg_assets.stages.reports import JsonValue, Markdown, PathValue, StageError, markdown_table


def test_markers_become_dagster_metadata_values_and_plain_values_stay():
    converted = dagster_metadata(
        {
            "table": markdown_table(["a", "b"], [[1, 2]]),
            "path": PathValue("/data/x"),
            "json": JsonValue({"k": [1]}),
            "count": 3,
            "skipped": None,
        }
    )
    assert converted["table"] == MetadataValue.md("| a | b |\n|---|---|\n| 1 | 2 |")
    assert converted["path"] == MetadataValue.path("/data/x")
    assert converted["json"] == MetadataValue.json({"k": [1]})
    assert converted["count"] == 3 and "skipped" not in converted
    assert isinstance(markdown_table(["a"], []), Markdown)


def test_a_wrapped_stage_error_names_where_and_the_error_type():
    error = StageError.wrap("namespace tiny, profile p", RuntimeError("GPU lost"))
    assert error.description == "namespace tiny, profile p: RuntimeError: GPU lost"
    assert error.metadata == {"error_type": "RuntimeError"}
