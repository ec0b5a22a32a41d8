"""The one Dagster code location of medkg-assets, built lazily.

Importing this module reads no configuration, no environment and touches no instance: Dagster
calls `defs()` (a `@dg.definitions` entry point) when it loads the code location, and tests,
the CLI and benchmarks call `build_definitions(settings)` with settings they built themselves.
Dynamic namespace partitions are registered by the source sensor and by the CLI, not here.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from medkg_assets.assets.chunks import ingest_assets
from medkg_assets.assets.dense import dense_assets
from medkg_assets.assets.retrieval import retrieval_assets
from medkg_assets.assets.serving import rollback_job_for, serving_assets
from medkg_assets.assets.sparse import sparse_assets
from medkg_assets.automation.jobs import build_jobs
from medkg_assets.automation.schedules import build_schedules
from medkg_assets.automation.sensors import build_sensors
from medkg_assets.config.env_names import (
    EMBEDDER_DEVICE,
    EMBEDDER_RERANK_BATCH_CAP,
    EMBEDDER_VRAM_BUDGET_GB,
    MEDKG_FAISS_MEMORY_BUDGET_GB,
    OPENSEARCH_CA_CERTS,
    OPENSEARCH_PASSWORD,
    OPENSEARCH_URL,
    OPENSEARCH_USERNAME,
    OPENSEARCH_VERIFY_CERTS,
    VLLM_URL,
)
from medkg_assets.observability.events import EVENTS_TOPIC_ENV, KAFKA_BOOTSTRAP_SERVERS_ENV
from medkg_assets.observability.metrics import PUSHGATEWAY_URL_ENV
from medkg_assets.orchestration.partitions import build_partitions
from medkg_assets.resources.encoders import DenseEncoderResource
from medkg_assets.resources.faiss_store import FaissIndexResource
from medkg_assets.resources.lucene import LuceneResource
from medkg_assets.resources.opensearch import OpenSearchResource
from medkg_assets.resources.reranker import RerankerResource
from medkg_assets.resources.sparse_encoder import SparseEncoderResource
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import Settings, configure_logging, load_settings


def _env(settings: Settings, name: str) -> dg.EnvVar | None:
    """The variable as a Dagster `EnvVar` when it is set: resolved when a run starts, shown in the
    UI by name, never a plain string in the definitions (secrets included); None when unset."""
    return dg.EnvVar(name) if settings.environ.get(name, "").strip() else None


def build_resources(settings: Settings) -> dict[str, Any]:
    """One resource per outside system, configured from the environment through `EnvVar`s."""
    device = _env(settings, EMBEDDER_DEVICE) or "auto"
    batch_cap = dg.EnvVar.int(EMBEDDER_RERANK_BATCH_CAP) if _env(settings, EMBEDDER_RERANK_BATCH_CAP) else 32
    return {
        "dense_encoder": DenseEncoderResource(
            device=device,
            vram_budget_gb=float(settings.environ.get(EMBEDDER_VRAM_BUDGET_GB) or 12),
            vllm_url=_env(settings, VLLM_URL),
        ),
        "faiss_store": FaissIndexResource(
            memory_budget_gb=float(budget)
            if (budget := settings.environ.get(MEDKG_FAISS_MEMORY_BUDGET_GB))
            else None
        ),
        "telemetry": TelemetryResource(
            data_dir=str(settings.data_dir),
            pushgateway_url=_env(settings, PUSHGATEWAY_URL_ENV),
            kafka_bootstrap_servers=_env(settings, KAFKA_BOOTSTRAP_SERVERS_ENV),
            events_topic=_env(settings, EVENTS_TOPIC_ENV),
        ),
        "sparse_encoder": SparseEncoderResource(device=device),
        "lucene": LuceneResource(),
        # What shard steps hand the publish step (small dicts) lives with the artefacts: on the
        # data volume every pod mounts, so one pod per step on Kubernetes reads what another wrote.
        "io_manager": dg.FilesystemIOManager(base_dir=str(settings.data_dir / "dagster_io")),
        "reranker": RerankerResource(device=device, batch_cap=batch_cap),
        "opensearch": OpenSearchResource(
            url=_env(settings, OPENSEARCH_URL),
            username=_env(settings, OPENSEARCH_USERNAME),
            password=_env(settings, OPENSEARCH_PASSWORD),
            verify_certs=settings.environ.get(OPENSEARCH_VERIFY_CERTS, "true").lower() != "false",
            ca_certs=_env(settings, OPENSEARCH_CA_CERTS),
        ),
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every asset, check, job, sensor, schedule and resource, for these settings."""
    partitions = build_partitions(settings)
    jobs = build_jobs(settings, partitions)
    built = [
        *ingest_assets(settings, partitions),
        *dense_assets(settings, partitions),
        *sparse_assets(settings, partitions),
        *retrieval_assets(settings, partitions),
        *serving_assets(settings, partitions),
    ]
    checks = [d for d in built if isinstance(d, dg.AssetChecksDefinition)]
    return dg.Definitions(
        assets=[d for d in built if not isinstance(d, dg.AssetChecksDefinition)],
        asset_checks=checks,
        jobs=[*jobs.all, rollback_job_for(settings)],
        sensors=build_sensors(settings, jobs),
        schedules=build_schedules(settings, jobs),
        resources=build_resources(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location Dagster loads (`dagster dev`, the code server, every run worker)."""
    configure_logging()
    return build_definitions(load_settings())
