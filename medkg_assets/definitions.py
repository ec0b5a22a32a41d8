"""The one Dagster `Definitions` of medkg-assets."""

from __future__ import annotations

import logging
import os

from dagster import (
    DagsterInstance,
    Definitions,
    load_asset_checks_from_modules,
    load_assets_from_modules,
)

from medkg_assets.assets import chunks, dense, dense_index, opensearch, retrieval, serving, sparse, summary
from medkg_assets.automation.jobs import JOBS
from medkg_assets.automation.rollback import rollback_job
from medkg_assets.automation.schedules import SCHEDULES
from medkg_assets.automation.sensors import SENSORS
from medkg_assets.partitions import register_namespaces
from medkg_assets.resources.encoders import DenseEncoderResource
from medkg_assets.resources.faiss_store import FaissIndexResource
from medkg_assets.resources.lucene import LuceneResource
from medkg_assets.resources.opensearch import OpenSearchResource
from medkg_assets.resources.reranker import RerankerResource
from medkg_assets.resources.sparse_encoder import SparseEncoderResource
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import (
    EMBEDDER_DEVICE,
    EMBEDDER_RERANK_BATCH_CAP,
    EMBEDDER_VRAM_BUDGET_GB,
    VLLM_URL,
    get_config,
)

logger = logging.getLogger("medkg_assets")

_STAGES = [chunks, dense, dense_index, sparse, opensearch, retrieval, summary, serving]


def _register_configured_namespaces() -> None:
    """Add `config/namespaces/*` as dynamic partitions so a fresh instance can materialise them."""
    if not os.environ.get("DAGSTER_HOME"):
        return
    try:
        added = register_namespaces(DagsterInstance.get(), get_config().namespaces)
    except Exception as error:  # an unreachable instance must not stop the code location loading
        logger.warning(f"could not register namespace partitions: {error}")
        return
    if added:
        logger.info(f"registered namespace partitions: {', '.join(added)}")


get_config()
_register_configured_namespaces()

defs = Definitions(
    assets=load_assets_from_modules(_STAGES),
    asset_checks=load_asset_checks_from_modules(_STAGES),
    jobs=[*JOBS, rollback_job],
    sensors=SENSORS,
    schedules=SCHEDULES,
    resources={
        "dense_encoder": DenseEncoderResource(
            device=os.environ.get(EMBEDDER_DEVICE, "auto"),
            vram_budget_gb=float(os.environ.get(EMBEDDER_VRAM_BUDGET_GB, "12")),
            vllm_url=os.environ.get(VLLM_URL) or None,
        ),
        "faiss_store": FaissIndexResource(),
        "telemetry": TelemetryResource(),
        "sparse_encoder": SparseEncoderResource(device=os.environ.get(EMBEDDER_DEVICE, "auto")),
        "lucene": LuceneResource(),
        "reranker": RerankerResource(
            device=os.environ.get(EMBEDDER_DEVICE, "auto"),
            batch_cap=int(os.environ.get(EMBEDDER_RERANK_BATCH_CAP, "32")),
        ),
        "opensearch": OpenSearchResource(
            url=os.environ.get("OPENSEARCH_URL") or None,
            username=os.environ.get("OPENSEARCH_USERNAME") or None,
            password=os.environ.get("OPENSEARCH_PASSWORD") or None,
            verify_certs=os.environ.get("OPENSEARCH_VERIFY_CERTS", "true").lower() != "false",
            ca_certs=os.environ.get("OPENSEARCH_CA_CERTS") or None,
        ),
    },
)
