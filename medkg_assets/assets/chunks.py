"""Ingest assets (per namespace): `source_documents` → `chunks`, shared by every profile."""

from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult, asset

from medkg_assets.assets.context import run_stage
from medkg_assets.orchestration.partitions import Partitions
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import Settings
from medkg_assets.stages.ingest import build_chunks, read_source_documents
from medkg_assets.topology import INGEST_GROUP


def ingest_assets(settings: Settings, partitions: Partitions) -> list[AssetsDefinition]:
    @asset(
        partitions_def=partitions.namespace,
        backfill_policy=partitions.backfill_policy,
        group_name=INGEST_GROUP,
        kinds={"python", "jsonl"},
        description="The namespace's source documents, validated and hashed (BEIR JSONL, .txt, .md).",
    )
    def source_documents(context: AssetExecutionContext, telemetry: TelemetryResource) -> MaterializeResult:
        return run_stage(context, settings, telemetry, "ingest", "python", read_source_documents)

    @asset(
        partitions_def=partitions.namespace,
        backfill_policy=partitions.backfill_policy,
        group_name=INGEST_GROUP,
        deps=[source_documents],
        kinds={"python", "jsonl"},
        description="Token windows with overlap over each document; shared by every profile.",
    )
    def chunks(context: AssetExecutionContext, telemetry: TelemetryResource) -> MaterializeResult:
        return run_stage(context, settings, telemetry, "chunking", "tokenizers", build_chunks)

    return [source_documents, chunks]
