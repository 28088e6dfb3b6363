# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath benchmarks P2-P4 (bench/p2_reconcile.py, p3_compile.py,
p4_packet.py) in their quick configuration, results and docs written to the
test's directory: each completes, writes the figures its report is built
from and its docs section, and removes its scratch namespaces and pins, so
that `make bench` cannot silently rot. Root: scratch namespaces, bpffs,
BPF_PROG_TEST_RUN."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.kernel import TARGET_PYTHON, netns_list, target_has
from tests.support.paths import REPO

pytestmark = [
    pytest.mark.bcc,
    pytest.mark.slow,
    pytest.mark.skipif(not (target_has("bcc") and target_has("pyroute2")), reason="%s lacks bcc or pyroute2" % TARGET_PYTHON),
    pytest.mark.skipif(not os.path.ismount("/sys/fs/bpf"), reason="bpffs is not mounted at /sys/fs/bpf"),
    pytest.mark.skipif(not (shutil.which("ip") and shutil.which("nsenter")), reason="needs ip and nsenter"),
]


def run_bench(tmp_path, script):
    out, doc = tmp_path / "out.json", tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## P1 — policy computation\n\nkept\n")
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "bench", script), "--quick", "--out", str(out), "--doc", str(doc)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    # Scratch names carry the benchmark's pid; all of them are gone.
    tag = "-%d" % proc.pid
    assert not [n for n in netns_list() if n.startswith("palbench-") and tag in n]
    assert not [n for n in Path("/sys/fs/bpf").iterdir() if n.name.startswith("palbench-") and n.name.endswith(tag)]
    text = doc.read_text()
    assert "## P1 — policy computation\n\nkept" in text  # the P1 section is left as it is
    return json.loads(out.read_text()), text


def test_p2_reconcile_quick(tmp_path):
    res, text = run_bench(tmp_path, "p2_reconcile.py")
    assert res["noop"]["writes_max"] == 0 and res["noop"]["attachments_max"] == 0 and not res["noop"]["changed_any"]
    assert res["change"]["writes"] == res["change"]["expected"] == res["change"]["kernel_delta"]
    assert set(res["goals"]) == {"noop_writes", "noop_s", "delta"}
    assert "## P2 — datapath reconcile" in text


def test_p3_compile_quick(tmp_path):
    res, text = run_bench(tmp_path, "p3_compile.py")
    s = res["summary"]
    assert s["compile"]["clang_s"] > 0 and s["per_endpoint_ms"]["median"] > 0 and s["add_one_work_ms"]["median"] > 0
    assert "## P3 — compile once" in text


@pytest.mark.skipif(not (shutil.which("iptables") and shutil.which("nft")), reason="needs iptables and nft")
def test_p4_packet_quick(tmp_path):
    res, text = run_bench(tmp_path, "p4_packet.py")
    assert res["bpf"]["floor"]["median_ns"] > 0
    assert all(v["median_ns"] > 0 for v in res["bpf"]["new_flow"].values())
    # The denied flow was dropped and the four-lookup flow passed (asserted in the bench).
    assert res["bpf"]["denied"]["median_ns"] > 0 and res["bpf"]["four_lookups"]["median_ns"] > 0
    assert "| denied new flow" in text and "four policy lookups" in text
    assert set(res["goals"]) == {"new_flow_ns", "ratio", "established_ns", "vs_chain", "vs_set"}
    # The uplink's from_network: each case ran and passed the packet (asserted in the bench).
    assert set(res["bpf"]["uplink"]) == {"elsewhere", "l4_endpoint", "l7_established"}
    assert all(v["median_ns"] > 0 for v in res["bpf"]["uplink"].values())
    assert "### The uplink on hosts that run the L7 proxy" in text
    for kind in ("iptables", "nftables"):
        assert set(res["fw"][kind]) == {str(n) for n in res["config"]["fw_rules"]}
    assert "## P4 — per-packet cost" in text and text.index("## P1") < text.index("## P4")
