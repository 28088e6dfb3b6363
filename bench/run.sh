#!/usr/bin/env bash
# Run every benchmark with the venv's python; `make bench` calls this.
#
#   bench/run.sh            full runs: raw figures under bench/results/, tables in docs/benchmarks.md
#   bench/run.sh --quick    smoke configuration (seconds): bench/results/*-quick.json, docs untouched
#
# Benchmarks: P1 policy computation (bench/p1_policy.py), P8 the same fleet through
# ansible-playbook in two inventory layouts (bench/p8_fleet_play.py), P9 the bytes a run
# ships to each host (bench/p9_transfer.py); as root also P2 datapath
# reconcile (bench/p2_reconcile.py), P3 compile vs per-endpoint configure
# (bench/p3_compile.py), P4 per-packet cost (bench/p4_packet.py), P5 HTTP through the L7
# proxy vs L3/L4 only (bench/p5_l7.py: a lab deployed with site.yml, ab, HAProxy), P6
# site.yml on a 20-host lab (bench/p6_lab_play.py). P2-P6
# need root (scratch netns, bpffs, BPF_PROG_TEST_RUN), /usr/bin/python3 with bcc and
# pyroute2, iptables and nft; without root they are skipped with a note.
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

run_bench() {  # name, script
    echo "==> $1"
    local start rc=0
    start=$(date +%s)
    "$PYTHON" "$2" "${args[@]}" || rc=$?
    echo "==> $1 done in $(( $(date +%s) - start ))s (exit $rc)"
    return "$rc"
}

failed=0
run_bench "P8 the fleet computation through ansible-playbook (host_vars vs fleet file)" bench/p8_fleet_play.py || failed=1
run_bench "P9 bytes shipped to each host per run" bench/p9_transfer.py || failed=1

if [ "$(id -u)" -ne 0 ]; then
    echo "==> P2-P6 skipped: they need root (network namespaces, bpffs, BPF_PROG_TEST_RUN)" >&2
    exit "$failed"
fi
run_bench "P2 datapath reconcile, 100 endpoints + 60,000-entry ipcache" bench/p2_reconcile.py || failed=1
run_bench "P3 compile once vs configure per endpoint" bench/p3_compile.py || failed=1
run_bench "P4 per-packet cost (BPF_PROG_TEST_RUN, iptables, nftables)" bench/p4_packet.py || failed=1
run_bench "P5 HTTP through the L7 proxy vs L3/L4 only (lab, site.yml, ab)" bench/p5_l7.py || failed=1
run_bench "P6 site.yml on a 20-host lab" bench/p6_lab_play.py || failed=1
exit "$failed"
