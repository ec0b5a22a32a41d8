"""One measured step of `shard_bench.py`, run in a fresh process as a Dagster multiprocess step is.

Each kind imports the package, builds the code location (`build_definitions`, as a step process
loads it), runs one stage function and prints one line `RESULT {json}` with its peak RSS
(ru_maxrss of this process and of its waited-for children: the Anserini JVM), phase seconds and
what the stage returned. Settings come from the environment (MEDKG_CONFIG_DIR, MEDKG_DATA_DIR).

Usage: python benchmarks/shard_steps.py KIND NAMESPACE [--task FILE]
KIND: chunks | dense_baseline | dense_plan | dense_shard | sparse_shard | dense_all | dense_publish |
      sparse_all | sparse_disabled | faiss | lucene
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

import common  # noqa: F401 - sets the offline environment

PROFILE = "minilm_cpu"
STARTED = time.perf_counter()


def peak_mib() -> dict[str, float]:
    """ru_maxrss (KiB on Linux) of this process and of its largest waited-for child, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"rss_mib": round(own, 1), "children_rss_mib": round(children, 1)}


def run(kind: str, namespace: str, task_file: Path | None) -> dict[str, Any]:
    """Run one step of `kind` and return what it measured."""
    from medkg_assets.definitions import build_definitions
    from medkg_assets.resources.encoders import DenseEncoderResource
    from medkg_assets.resources.faiss_store import FaissIndexResource
    from medkg_assets.resources.lucene import LuceneResource
    from medkg_assets.resources.sparse_encoder import SparseEncoderResource
    from medkg_assets.settings import load_settings
    from medkg_assets.stages import dense, sparse
    from medkg_assets.stages.context import StageContext
    from medkg_assets.stages.faiss import build_faiss_index
    from medkg_assets.stages.ingest import build_chunks, read_source_documents
    from medkg_assets.stages.lucene import build_lucene_indexes
    from medkg_assets.stages.sharded import ShardTask

    settings = load_settings()
    build_definitions(settings)  # what every step process does when it loads the code location
    out: dict[str, Any] = {"kind": kind, "namespace": namespace, "import_s": time.perf_counter() - STARTED}
    started = time.perf_counter()
    if kind == "chunks":
        read_source_documents(StageContext.build(settings, namespace))
        report = build_chunks(StageContext.build(settings, namespace))
        out.update(chunks=report.chunks, shards=report.shards, largest_shard=report.largest_shard)
    else:
        ctx = StageContext.build(settings, namespace, PROFILE)
        profile = ctx.require_profile()
        dense_encoders = DenseEncoderResource(device="cpu")
        sparse_encoders = SparseEncoderResource(device="cpu")
        if kind == "dense_baseline":  # the model loaded, nothing encoded: the step's floor
            dense_encoders.open(profile, settings.models_dir).encode(["warm-up"])
        elif kind == "dense_plan":
            plan = dense.plan_dense(ctx, dense_encoders)
            out.update(plan=plan.model_dump(mode="json"))
        elif kind in ("dense_shard", "sparse_shard"):
            assert task_file is not None, "--task is required"
            task = ShardTask.model_validate_json(task_file.read_text())
            opened = time.perf_counter()
            if kind == "dense_shard":
                dense_encoders.open(profile, settings.models_dir)  # lru-cached: the step reuses it
            else:
                sparse_encoders.open(profile, settings.models_dir)
            out["model_load_s"] = time.perf_counter() - opened
            encoded = time.perf_counter()
            if kind == "dense_shard":
                outcome = dense.embed_dense_shard(ctx, dense_encoders, task)
            else:
                outcome = sparse.encode_sparse_shard(ctx, sparse_encoders, task)
            out["shard_s"] = time.perf_counter() - encoded
            out.update(outcome=outcome.model_dump(mode="json"))
        elif kind == "dense_all":
            report = dense.embed_dense(ctx, dense_encoders)
            out.update(vectors=report.vectors, encoded=report.embeddings_generated, kept=report.shards_kept)
            out.update(shards_encoded=report.shards_encoded, shards=report.shards)
        elif kind == "dense_publish":  # what the publish step does once every shard is finished
            plan = dense.plan_dense(ctx, dense_encoders)
            out["plan_s"] = time.perf_counter() - started
            outcomes = [dense.embed_dense_shard(ctx, dense_encoders, t) for t in plan.tasks]
            assert all(o.kept for o in outcomes), "dense_publish expects every shard finished"
            published = time.perf_counter()
            report = dense.publish_dense(ctx, plan, outcomes)
            out.update(publish_s=time.perf_counter() - published, vectors=report.vectors)
        elif kind == "sparse_all":
            report = sparse.encode_sparse(ctx, sparse_encoders, True)
            out.update(vectors=report.vectors, encoded=report.embeddings_generated)
        elif kind == "sparse_disabled":
            sparse.encode_sparse(ctx, sparse_encoders, False)
        elif kind == "faiss":
            report = build_faiss_index(ctx, FaissIndexResource(use_gpu="never"))
            out.update(ntotal=report.ntotal, file_mib=report.file_size_bytes / 2**20)
        elif kind == "lucene":
            report = build_lucene_indexes(ctx, LuceneResource())
            out.update(
                impact=report.impact_documents, bm25=report.bm25_documents, build_s=report.build_seconds
            )
        else:
            raise SystemExit(f"unknown kind {kind!r}")
    out["stage_s"] = time.perf_counter() - started
    out["total_s"] = time.perf_counter() - STARTED
    out.update(peak_mib())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind")
    parser.add_argument("namespace")
    parser.add_argument("--task", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    print("RESULT " + json.dumps(run(args.kind, args.namespace, args.task)), flush=True)


if __name__ == "__main__":
    main()
