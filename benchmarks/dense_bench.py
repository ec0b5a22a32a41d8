"""P1 and P2: dense stage throughput vs raw SentenceTransformer.encode, and incremental re-runs.

P1: chunks/s of the dense stage (`embed_dense`, what the `dense_embeddings` asset runs) ÷ chunks/s of a bare
`SentenceTransformer.encode` on the same chunk texts, same batch size, same process, model
already loaded for both (target ≥ 0.90).
P2: wall time of re-running the stage after 1 % of the documents changed ÷ the full run, and the
cache hit ratio (targets ≤ 0.05 and ≥ 0.99).

Usage: python benchmarks/dense_bench.py [--namespace medquad_sample]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

from common import isolated_data_dir, print_table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespace", default="medquad_sample")
    args = parser.parse_args()
    data_dir = isolated_data_dir("medkg-dense-bench-")
    from medkg_assets.definitions import build_resources
    from medkg_assets.encoders.dense import SentenceTransformerEncoder
    from medkg_assets.model_reference import resolve_model
    from medkg_assets.settings import Settings
    from medkg_assets.stages.context import StageContext
    from medkg_assets.stages.dense import embed_dense
    from medkg_assets.stages.ingest import build_chunks, read_source_documents
    from medkg_assets.text.chunk_shards import iter_chunk_shards

    config = Settings()
    profile = config.profiles.get("minilm_cpu")
    namespace = config.namespace(args.namespace)
    # Copy the source so 1 % of it can be edited for P2 without touching the repository.
    source_copy = data_dir / "source" / namespace.source_path.name
    source_copy.parent.mkdir(parents=True)
    shutil.copy(namespace.source_path, source_copy)
    config_copy = data_dir / "config"
    shutil.copytree(config.config_dir, config_copy)
    spec = config_copy / "namespaces" / f"{args.namespace}.yaml"
    spec.write_text(spec.read_text().replace(namespace.source.path, str(source_copy)))
    import os

    os.environ["MEDKG_CONFIG_DIR"] = str(config_copy)
    settings = Settings()
    encoders = build_resources(settings)["dense_encoder"]

    def ingest() -> None:
        read_source_documents(StageContext.build(settings, args.namespace))
        build_chunks(StageContext.build(settings, args.namespace))

    stage = StageContext.build(settings, args.namespace, "minilm_cpu")
    ingest()
    chunks = [c for _, shard in iter_chunk_shards(stage.layout.chunks(args.namespace)) for c in shard]
    texts = [c.model_input for c in chunks]
    encoder = SentenceTransformerEncoder(
        resolve_model(profile.dense.model).location,
        "cpu",
        profile.dense.normalize,
        profile.dense.max_tokens,
    )
    encoder.model.encode(texts[:64], batch_size=64)  # warm-up, both paths share the loaded model
    started = time.perf_counter()
    encoder.model.encode(texts, batch_size=profile.dense.batch_size, normalize_embeddings=True)
    raw_s = time.perf_counter() - started
    started = time.perf_counter()
    full = embed_dense(stage, encoders)
    stage_s = time.perf_counter() - started
    lines = source_copy.read_text().splitlines()
    changed = max(1, len(lines) // 100)
    for i in range(changed):
        record = json.loads(lines[i * 97 % len(lines)])
        record["text"] += " Updated guidance was added to this answer."
        lines[i * 97 % len(lines)] = json.dumps(record)
    source_copy.write_text("\n".join(lines) + "\n")
    ingest()
    started = time.perf_counter()
    again = embed_dense(stage, encoders)
    rerun_s = time.perf_counter() - started
    n = len(texts)
    p1 = (n / stage_s) / (n / raw_s)
    print_table(
        f"Dense stage on {args.namespace} ({n} chunks, batch {profile.dense.batch_size}, CPU)",
        ["measure", "value", "target"],
        [
            ["raw SentenceTransformer.encode", f"{n / raw_s:.1f} chunks/s ({raw_s:.1f} s)", ""],
            ["dense stage (embed_dense)", f"{n / stage_s:.1f} chunks/s ({stage_s:.1f} s)", ""],
            ["P1 stage ÷ raw throughput", f"{p1:.3f}", "≥ 0.90"],
            [
                f"re-run after {changed} of {len(lines)} documents changed",
                f"{rerun_s:.2f} s, {again.embeddings_generated} encoded",
                "",
            ],
            ["P2 re-run ÷ full wall time", f"{rerun_s / stage_s:.3f}", "≤ 0.05"],
            ["P2 cache hit ratio", f"{again.cache_hit_ratio:.4f}", "≥ 0.99"],
            ["full run embeddings_generated", full.embeddings_generated, ""],
        ],
    )
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
