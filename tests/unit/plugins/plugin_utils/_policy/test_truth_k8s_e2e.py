# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Truth tables: every case of the Kubernetes network-policy e2e model
(tests/support/k8s_e2e_cases.py) computed by the policy engine and compared
cell by cell with the upstream expectation."""

from __future__ import annotations

import pytest

from tests.support.k8s_e2e_cases import CASES, COMBOS, PODS, model_endpoints, model_namespaces, render
from tests.support.policy_harness import Lab, probe


def _probes():
    return [(f, t, port, proto) for port, proto in COMBOS for f in PODS for t in PODS if f != t]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_e2e_truth_table(case):
    lab = Lab(model_endpoints(case.pod_labels), case.policies, namespaces=model_namespaces(case.ns_labels))
    cells = _probes()
    results = lab.trace([probe(f, t, port, proto) for f, t, port, proto in cells])
    assert len(results) == len(cells)
    observed = {}
    for (f, t, port, proto), result in zip(cells, results):
        observed[(port, proto, f, t)] = result
    failures = []
    for port, proto in COMBOS:
        want = case.expected(port, proto)
        got = {(f, t): observed[(port, proto, f, t)]["verdict"] == "allow" for f in PODS for t in PODS if f != t}
        diff = [(f, t) for (f, t) in got if got[(f, t)] != want[(f, t)]]
        if not diff:
            continue
        got_cells = dict(want)
        got_cells.update(got)
        lines = ["%d/%s: %d cells differ" % (port, proto, len(diff)),
                 "expected:", render(want), "observed:", render(got_cells)]
        for f, t in sorted(diff):
            r = observed[(port, proto, f, t)]
            lines.append("  %s -> %s: expected %s, got %s (%s; policies %s)" % (
                f, t, "allow" if want[(f, t)] else "deny", r["verdict"], r.get("reason"), r.get("policies")))
        failures.append("\n".join(lines))
    assert not failures, "upstream case %r:\n%s" % (case.upstream, "\n\n".join(failures))


def test_the_model_is_the_upstream_model():
    """Guards the fixture itself: 3 namespaces x 3 pods, 2 ports x 3 protocols."""
    endpoints = model_endpoints()
    assert len(endpoints) == 9 and len({e["ipv4"] for e in endpoints}) == 9
    assert {(p["port"], p["protocol"]) for p in endpoints[0]["ports"]} == set(COMBOS)
    assert sum(1 for dummy in _probes()) == 72 * 6
