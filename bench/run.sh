#!/usr/bin/env bash
# Run every benchmark with the venv's python; `make bench` calls this.
#
#   bench/run.sh            full runs: raw figures under bench/results/, tables in docs/benchmarks.md
#   bench/run.sh --quick    smoke configuration (seconds): bench/results/*-quick.json, docs untouched
#
# Benchmarks: P1 policy computation (bench/p1_policy.py).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PYTHON=$ROOT/.venv/bin/python

usage() { sed -n 's/^#   //p' "${BASH_SOURCE[0]}"; }

args=()
for arg in "$@"; do
    case $arg in
        --quick) args+=(--quick) ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/run.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

[ -x "$PYTHON" ] || { echo "bench: $PYTHON missing; run make setup" >&2; exit 1; }
cd "$ROOT"

echo "==> P1 policy computation ($(nproc) CPUs)"
start=$(date +%s)
"$PYTHON" bench/p1_policy.py "${args[@]}"
echo "==> P1 done in $(( $(date +%s) - start ))s"
