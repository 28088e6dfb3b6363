# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/p1_policy.py at a tiny size (no root): it completes and writes every
field its report is built from, so that `make bench` cannot silently rot.
The root-only benchmarks P2-P4 have theirs in
tests/integration/test_bench_datapath.py."""

import json
import os
import subprocess
import sys

from tests.support.paths import REPO


def test_p1_runner_quick(tmp_path):
    out, doc = tmp_path / "p1.json", tmp_path / "benchmarks.md"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "bench", "p1_policy.py"), "--quick", "--endpoints", "120", "--sizes", "40",
         "--out", str(out), "--doc", str(doc)],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert {"machine", "date", "command", "goals", "target", "scaling", "reading"} <= set(results)
    assert results["machine"]["nproc"] >= 1 and results["machine"]["python"]
    target = results["target"]
    for run in ("full", "noop"):
        assert target[run]["median_s"] > 0 and target[run]["min_s"] <= target[run]["median_s"]
        assert target[run]["peak_rss_mib"] > 0
        assert set(target[run]["stages_median_s"]) == {"load_fleet", "parse", "cache_load", "compute", "cache_save", "host_shares"}
    assert set(target["changes"]) == {"new-identity", "existing-identity"}
    for change in target["changes"].values():
        assert change["ratio_median"] > 0 and change["engine_only_ratio"] > 0
    assert all(v["equal"] for v in target["verification"].values()), target["verification"]
    assert [p["endpoints"] for p in results["scaling"]] == [40, 120]
    assert {"full_s", "peak_rss_mib", "change_ratio:new-identity", "change_ratio:existing-identity"} == set(results["goals"])
    text = doc.read_text()
    assert "## P1 — policy computation" in text and "| full, no cache |" in text
