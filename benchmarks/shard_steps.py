"""One measured step of `shard_bench.py`, run in a fresh process as a Dagster multiprocess step is.

Each kind imports the package, builds the code location (`build_definitions`, as a step process
loads it), runs one stage function and prints one line `RESULT {json}` with its peak RSS, phase
seconds and what the stage returned. Settings come from the environment (MEDKG_CONFIG_DIR,
MEDKG_DATA_DIR).

Peak RSS is VmHWM (/proc/self/status): the high-water mark of this process's own address space.
ru_maxrss is reported beside it but is not clean: Linux keeps the high-water mark of the address
space a process had before execve (its parent's, after fork or vfork) in the same counter, so a
small step started by a large parent reads the parent's peak. Children (the Anserini JVM of the
Lucene build) are sampled every 50 ms: the largest VmHWM of any descendant.

Usage: python benchmarks/shard_steps.py KIND NAMESPACE [--task FILE]
KIND: chunks | dense_baseline | dense_plan | dense_shard | sparse_shard | dense_all | dense_fill |
      dense_publish | p1 | sparse_all | sparse_disabled | faiss | lucene
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

import common  # noqa: F401 - sets the offline environment

PROFILE = "minilm_cpu"
STARTED = time.perf_counter()


def status_kib(pid: int | str, field: str = "VmHWM") -> int:
    """A `/proc/<pid>/status` field in KiB (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class ChildPeaks(threading.Thread):
    """Samples the VmHWM of every descendant process every 50 ms (the JVM's own peak)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib = 0
        self.stopped = threading.Event()

    def descendants(self, pid: int) -> list[int]:
        found, todo = [], [pid]
        while todo:
            current = todo.pop()
            for task in Path(f"/proc/{current}/task").glob("*"):
                try:
                    children = [int(c) for c in (task / "children").read_text().split()]
                except OSError:
                    continue
                found += children
                todo += children
        return found

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            for child in self.descendants(os.getpid()):
                self.peak_kib = max(self.peak_kib, status_kib(child))


def peak_mib(children: ChildPeaks) -> dict[str, float]:
    """VmHWM of this process and the sampled peak of its descendants; ru_maxrss for reference."""
    return {
        "hwm_mib": round(status_kib("self") / 1024, 1),
        "children_hwm_mib": round(children.peak_kib / 1024, 1),
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "ru_maxrss_children_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def run(kind: str, namespace: str, task_file: Path | None) -> dict[str, Any]:
    """Run one step of `kind` and return what it measured."""
    children = ChildPeaks()
    children.start()
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
        elif kind == "dense_fill":  # random unit vectors for every unfinished shard (no model)
            out.update(filled=fill_dense(ctx, dense.plan_dense(ctx, dense_encoders)))
        elif kind == "p1":
            out.update(measure_p1(ctx, dense_encoders))
        elif kind == "dense_publish":  # the publish step once every shard is finished
            plan = dense.plan_dense(ctx, dense_encoders)
            out["plan_s"] = time.perf_counter() - started
            assert plan.finished == len(plan.tasks), "dense_publish expects every shard finished"
            published = time.perf_counter()
            report = dense.publish_dense(ctx, plan, [])
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
    time.sleep(0.1)  # one more sample of the children
    children.stopped.set()
    out.update(peak_mib(children))
    return out


def fill_dense(ctx: Any, plan: Any) -> int:
    """Save random unit vectors as the output of every unfinished shard; the rows filled."""
    import numpy as np

    from medkg_assets.stages.dense import dense_outputs
    from medkg_assets.stages.ingest import shard_chunks
    from medkg_assets.vectors.dense_artifact import dense_table

    profile, outputs, rows = ctx.require_profile(), dense_outputs(ctx), 0
    for task in plan.tasks:
        if task.finished:
            continue
        chunks = shard_chunks(ctx, task.chunk_version, task.chunk_shard, profile).chunks
        vectors = np.random.default_rng(task.position).standard_normal((len(chunks), profile.dense.dims))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [c.chunk_id for c in chunks]
        outputs.save(
            task.key, dense_table(ids, [c.doc_id for c in chunks], [c.content_hash for c in chunks], vectors)
        )
        rows += len(chunks)
    return rows


def padded_tokens(lengths: list[int], batch: int) -> int:
    """Tokens the forward passes compute when texts go longest first in batches of `batch`, each
    padded to its longest (as one `encode()` call sorts, and as the stage sorts each shard)."""
    ordered = sorted(lengths, reverse=True)
    return sum(len(ordered[i : i + batch]) * ordered[i] for i in range(0, len(ordered), batch))


def measure_p1(ctx: Any, encoders: Any) -> dict[str, Any]:
    """Stage ÷ raw throughput on the shards still to encode, same texts, batch and process."""
    from medkg_assets.encoders.dense import SentenceTransformerEncoder
    from medkg_assets.model_reference import resolve_model
    from medkg_assets.stages.dense import embed_dense, plan_dense
    from medkg_assets.stages.ingest import shard_chunks

    profile = ctx.require_profile()
    pending = [t for t in plan_dense(ctx, encoders).tasks if not t.finished]
    by_shard = [
        [c.model_input for c in shard_chunks(ctx, t.chunk_version, t.chunk_shard, profile).chunks]
        for t in pending
    ]
    texts = [text for shard in by_shard for text in shard]
    encoder = SentenceTransformerEncoder(
        resolve_model(profile.dense.model).location, "cpu", profile.dense.normalize, profile.dense.max_tokens
    )
    encoder.model.encode(texts[:64], batch_size=64)  # warm-up; the stage shares this loaded model
    started = time.perf_counter()
    encoder.model.encode(texts, batch_size=profile.dense.batch_size, normalize_embeddings=True)
    raw_s = time.perf_counter() - started
    started = time.perf_counter()
    report = embed_dense(ctx, encoders)
    stage_s = time.perf_counter() - started
    assert report.embeddings_generated == len(texts), (report.embeddings_generated, len(texts))
    n = len(texts)
    tokenizer, limit, batch = encoder.model.tokenizer, encoder.model.max_seq_length, profile.dense.batch_size
    lengths = [
        [len(i) for i in tokenizer(s, truncation=True, max_length=limit)["input_ids"]] for s in by_shard
    ]
    return {
        "padded_global": padded_tokens([x for shard in lengths for x in shard], batch),
        "padded_per_shard": sum(padded_tokens(shard, batch) for shard in lengths),
        "real_tokens": sum(sum(shard) for shard in lengths),
        "chunks": n,
        "shards": len(pending),
        "raw_s": raw_s,
        "stage_s_p1": stage_s,
        "raw_rate": n / raw_s,
        "stage_rate": n / stage_s,
        "ratio": raw_s / stage_s,
        "batch": profile.dense.batch_size,
    }


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
