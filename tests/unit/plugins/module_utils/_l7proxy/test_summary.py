# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The l7proxy module's before/after summary (module_utils/_l7proxy/summary.py)."""

from ansible_collections.palisade.ebpf.plugins.module_utils._l7proxy import summary


def test_a_running_proxy():
    rules = summary.map_file(2, "p1 r-allow\np2 r-deny\n")
    endpoints = summary.map_file(1, "10.1.1.10 p1\n")
    assert len(rules["sha256"]) == 16 and rules != summary.map_file(2, "p1 r-other\np2 r-deny\n")
    item = summary.summary(True, 4242, "ab" * 32, {"rules": rules, "endpoints": endpoints}, True, "0")
    assert item["config"] == "ab" * 8
    assert summary.lines(item) == [
        "haproxy: running, master pid 4242, configuration " + "ab" * 8,
        "map endpoints: 1 entries, sha256 %s" % endpoints["sha256"],
        "map rules: 2 entries, sha256 %s" % rules["sha256"],
        "listener registered in the proxy socket map",
        "sysctl net.ipv4.tcp_early_demux = 0",
    ]


def test_nothing_running_on_a_kernel_without_the_sysctl():
    assert summary.lines(summary.summary()) == ["haproxy: not running", "listener not registered in the proxy socket map"]
