#!/usr/bin/env bash
# The rollout drill on the bundled sample: build the baseline and a candidate (same vectors, HNSW
# instead of a flat index), promote the baseline, canary the candidate, promote it through the
# Recall@10 gate, then roll back and time it. Uses a fresh instance and data dir under $1
# (default: a temp dir); run from the repository root after `make install`.
set -euo pipefail
root=${1:-$(mktemp -d)}
export DAGSTER_HOME=$root/dagster_home MEDKG_DATA_DIR=$root/data HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
mkdir -p "$DAGSTER_HOME" && cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
medkg=.venv/bin/medkg
ns=medquad_sample baseline=minilm_cpu candidate=minilm_hnsw_cpu
step() { echo; echo "== $*"; }
live_is() {  # fail the drill unless `medkg status` shows profile $1 live for the namespace
  $medkg status --namespace $ns | tee /dev/stderr | awk -v ns=$ns -v p="$1" '$1 == ns && $2 == p {ok=1} END {exit !ok}' ||
    { echo "rollout drill: expected $1 live for $ns" >&2; exit 1; }
}
step "build the baseline $baseline" && $medkg run --namespace $ns --profile $baseline | tail -12
step "its processing_summary.json and rerank manifest match the golden files" &&
  .venv/bin/python -m medkg_assets_tests.golden check "$MEDKG_DATA_DIR" $ns $baseline
step "promote the baseline" && $medkg promote --namespace $ns --profile $baseline && live_is $baseline
export EMBEDDING_PROFILE_EXPERIMENT=$candidate PROFILE_ROLLOUT_PERCENTAGE=0
step "candidate set, 0 %: $ns stays on the baseline" && live_is $baseline
step "build the candidate $candidate alongside" && $medkg run --namespace $ns --profile $candidate | tail -12
export PROFILE_ROLLOUT_PERCENTAGE=100
step "100 %: promote the candidate (checks + Recall@10 gate)" && $medkg promote --namespace $ns
live_is $candidate
step "roll back" && $medkg rollback --namespace $ns && live_is $baseline
echo "rollout drill passed"
