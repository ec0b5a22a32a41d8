#!/usr/bin/env bash
# GPU proof for issue 13, item 6 (benchmarks/README.md, "GPU check").
#
#   bash benchmarks/gpu_check.sh --prepare [--recheck]   # here: wheels + packed model into wheels/gpu/
#   bash benchmarks/gpu_check.sh [gpu_check.py args]     # on the device, with carry ["wheels/gpu"]
#
# The device tool copies only the working tree (64 MiB with what `carry` names) and nothing can be
# installed there from an index, so --prepare puts every wheel and the model (fp16, xz) into the
# git-ignored wheels/gpu/, and the run installs from there with --no-index into a scratch target.
set -uo pipefail
cd "$(dirname "$0")/.."

WHEELS=wheels/gpu
CARRY_LIMIT_MIB=64
# Pins follow requirements.lock; numpy and packaging are already on the device image.
PACKAGES=(faiss-cpu==1.15.1 pydantic==2.14.4 pydantic-core==2.50.5 typing-extensions==4.16.0
          annotated-types==0.8.0 typing-inspection==0.4.5)
FAISS_GPU_CANDIDATES=(faiss-gpu-cu12 faiss-gpu-cu11 faiss-gpu)
PLATFORM=(--only-binary=:all: --python-version 3.12 --implementation cp
          --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
          --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64)

if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3
fi

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# Bytes that the device call would send: tracked + untracked-not-ignored files, plus wheels/gpu.
travel_bytes() {
    local tree carried
    tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } \
        | xargs -0 -r stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    carried=$(du -sb "$WHEELS" 2>/dev/null | cut -f1)
    echo $((tree + ${carried:-0}))
}

prepare() {
    set -e
    local recheck=${1:-}
    mkdir -p "$WHEELS"
    local exclude
    exclude=$(git rev-parse --git-path info/exclude)
    mkdir -p "$(dirname "$exclude")"
    grep -qxF "/$WHEELS/" "$exclude" 2>/dev/null || echo "/$WHEELS/" >>"$exclude"

    echo "== wheels for Python 3.12 manylinux x86_64 -> $WHEELS"
    "$PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$WHEELS" "${PACKAGES[@]}"

    echo "== model pack -> $WHEELS/model"
    if [ ! -f "$WHEELS/model/pack.json" ] || [ -n "$recheck" ]; then
        "$PY" benchmarks/gpu_check.py --pack-model "${MODEL_SRC:-auto}" --model "$WHEELS/model"
    fi

    echo "== faiss GPU wheels on the index: do any fit?"
    if [ ! -f "$WHEELS/faiss_gpu_candidates.json" ] || [ -n "$recheck" ]; then
        local scratch left
        scratch=$(mktemp -d)
        for name in "${FAISS_GPU_CANDIDATES[@]}"; do
            "$PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$scratch" "$name" \
                >"$scratch/$name.log" 2>&1 || tail -n 2 "$scratch/$name.log" >"$scratch/$name.failed"
        done
        left=$(awk -v t="$(travel_bytes)" -v l="$CARRY_LIMIT_MIB" 'BEGIN { printf "%.1f", l - t / 1048576 }')
        "$PY" benchmarks/gpu_check.py --inspect-faiss-gpu "$scratch" --carry-left-mib "$left"
        # A wheel that fits travels (and is installed instead of faiss-cpu); none did on 2026-12-02.
        "$PY" - "$WHEELS/faiss_gpu_candidates.json" "$scratch" "$WHEELS" <<'EOF'
import json, shutil, sys
record, scratch, wheels = sys.argv[1:]
for c in json.load(open(record))["candidates"]:
    if c.get("fits"):
        shutil.copy2(f"{scratch}/{c['wheel']}", wheels)
        print(f"copied {c['wheel']} into {wheels}")
        break
EOF
        rm -rf "$scratch"
    fi
    ls -l "$WHEELS" "$WHEELS/model"
    local total
    total=$(travel_bytes)
    echo "== would travel: $(mib "$total") MiB of $CARRY_LIMIT_MIB MiB (working tree + $WHEELS)"
    if [ "$total" -gt $((CARRY_LIMIT_MIB * 1048576)) ]; then
        echo "!! over the device tool's limit: the call would be refused" >&2
        return 1
    fi
}

install_from_wheels() {
    local log=$1 site=${GPU_CHECK_SITE:-/tmp/gpu_check_site}
    if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        printf 'wheels/gpu\tskipped\tno wheels carried (run --prepare here, carry ["wheels/gpu"]); faiss and pydantic only if already there\n' >>"$log"
        return
    fi
    local faiss=faiss-cpu
    ls "$WHEELS"/faiss_gpu*.whl >/dev/null 2>&1 && faiss=$(basename "$(ls "$WHEELS"/faiss_gpu*.whl | head -n 1)" | cut -d- -f1 | tr _ -)
    local wanted=()
    "$PY" -c "import faiss" 2>/dev/null || wanted+=("$faiss")
    "$PY" -c "import pydantic" 2>/dev/null || wanted+=(pydantic pydantic-core typing-extensions annotated-types typing-inspection)
    if [ ${#wanted[@]} -eq 0 ]; then
        printf 'wheels/gpu\tnot needed\tfaiss and pydantic already importable\n' >>"$log"
        return
    fi
    local pip=("$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --find-links "$WHEELS" --target "$site")
    if ! "${pip[@]}" "${wanted[@]}" 2>"$log.err"; then
        echo "one install of ${wanted[*]} failed, trying each:"; cat "$log.err"
        for pkg in "${wanted[@]}"; do "${pip[@]}" --upgrade "$pkg" 2>>"$log.err" || printf '%s\tFAILED\t%s\n' "$pkg" "$(tail -n 1 "$log.err")" >>"$log"; done
    fi
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    local mod
    for pkg in "${wanted[@]}"; do
        mod=$(echo "$pkg" | tr - _ | sed 's/^faiss_.*/faiss/')
        if "$PY" -c "import $mod" 2>/dev/null; then
            printf '%s\tinstalled\tpip --no-index from wheels/gpu into %s\n' "$pkg" "$site" >>"$log"
        elif ! grep -q "^$pkg	" "$log"; then
            printf '%s\tFAILED\timport %s fails after the install\n' "$pkg" "$mod" >>"$log"
        fi
    done
    [ "$faiss" != faiss-cpu ] || printf 'faiss-gpu\tnot carried\tsee the faiss rows\n' >>"$log"
}

run_check() {
    echo "== nvidia-smi"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi: not found"
    echo "== python: $PY ($("$PY" --version 2>&1))"
    local log
    log=$(mktemp)
    install_from_wheels "$log"
    cat "$log"
    local out=()
    [ -n "${OUT:-}" ] && out=(--out "$OUT")
    # 480 s hard stop for the Python part; its own --budget-s (400 s) skips late checks first.
    PYTHONUNBUFFERED=1 timeout 480 "$PY" benchmarks/gpu_check.py --install-log "$log" "${out[@]}" "$@"
}

case "${1:-}" in
    --prepare) shift; prepare "${1:-}" ;;
    *)
        if [ -n "${OUT:-}" ]; then
            run_check "$@" 2>&1 | tee "$OUT/gpu_check.log"
        else
            run_check "$@"
        fi
        ;;
esac
