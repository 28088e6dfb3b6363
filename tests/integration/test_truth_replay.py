"""The policy engine's truth tables, replayed with real packets across hosts.

A representative subset of the cases of tests/unit/plugins/plugin_utils/_policy/test_truth_k8s_e2e.py
(the Kubernetes network-policy e2e model) and of the Cilium documentation's
examples (tests/unit/plugins/plugin_utils/_policy/test_truth_cilium.py, restated in the same model), run
on a real lab fleet: site.yml enforces each case's policies, then every
ordered pair of pods is probed on ports 80 and 81, TCP and UDP, with real
packets (verify.yml), and the verdicts are compared three ways: real ==
computed (trace.yml) == the truth table's expected matrix.

The lab is the e2e model: namespaces x, y, z (labelled ns=<name>), pods a, b,
c in each (labelled pod=<name>), each serving 80 and 81 on TCP and UDP under
the upstream port names serve-<port>-<protocol>. Pods are spread over three
hosts by pod name (host ha holds x/a, y/a, z/a ...), so 54 of the 72 ordered
pairs cross hosts and 18 stay on one; host hc is reached over real SSH.
"""

import concurrent.futures
import copy
import os
import re

import pytest
import yaml

from tests.support import k8s_e2e_cases as e2e

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces")

PREFIX = "ptr%d" % (os.getpid() % 100000)

NAMESPACES = e2e.NAMESPACES
PODS = e2e.PODS
COMBOS = tuple((port, proto) for port in (80, 81) for proto in ("TCP", "UDP"))
PORTS = [{"name": "serve-%d-%s" % (port, proto.lower()), "port": port, "protocol": proto} for port, proto in COMBOS]
HOST_OF = {"a": "ha", "b": "hb", "c": "hc"}


def pod_ip(pod):
    """Host by pod name (10.91.<1..3>.0/24), address by namespace."""
    ns, name = pod.split("/")
    return "10.91.%d.%d" % (e2e.PODS_PER_NS.index(name) + 1, 10 + NAMESPACES.index(ns) + 1)


def hosts():
    result = {}
    for i, (pod_name, host) in enumerate(sorted(HOST_OF.items())):
        spec = {"palisade_node": {"ipv4": "192.0.2.%d" % (201 + i), "pod_cidr": "10.91.%d.0/24" % (i + 1)},
                "palisade_endpoints": [{"name": pod_name, "namespace": ns, "labels": {"pod": pod_name},
                                        "ipv4": pod_ip("%s/%s" % (ns, pod_name)), "ports": copy.deepcopy(PORTS)}
                                       for ns in NAMESPACES]}
        if host == "hc":
            spec["ansible_connection"] = "ssh"
        result[host] = spec
    return result


def relocate(policies):
    """The unit model's pod addresses (ipBlock cases) rewritten to the lab's."""
    for pod in PODS:
        policies = re.sub(r"\b%s\b" % re.escape(e2e.pod_ip(pod)), pod_ip(pod), policies)
    return policies


class Replay(object):
    """One case: policy YAML text and the expected matrix per (port, protocol)."""

    def __init__(self, name, source, policies, expect):
        self.name = name
        self.source = source
        self.policies = policies
        self.expect = expect

    def expected(self, port, proto):
        r = e2e.Reachability(True)
        self.expect(r, port, proto)
        return r.cells


def from_e2e(name):
    case = next(c for c in e2e.CASES if c.name == name)
    assert not case.pod_labels and not case.ns_labels, "replay needs the plain model: %s" % name
    return Replay(name, "test_truth_k8s_e2e: " + case.upstream, relocate(case.policies), case.expect)


def only(port, proto, *allowed):
    return (port, proto) in allowed


# Cilium examples (tests/unit/plugins/plugin_utils/_policy/test_truth_cilium.py) restated in the e2e model.
CILIUM = [
    # test_starwars_l3_l4_policy: fromEndpoints + toPorts; a namespaced CNP's
    # fromEndpoints stays in its namespace (test_l3_allow_all_endpoints_is_namespace_scoped).
    Replay("cnp-l3-l4-label-rule", "test_truth_cilium: Star Wars L3/L4 rule (sw_l3_l4_policy.yaml)", """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1, namespace: x}
spec:
  endpointSelector: {matchLabels: {pod: a}}
  ingress:
    - fromEndpoints: [{matchLabels: {pod: b}}]
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
""", lambda r, port, proto: (r.set("*", "x/a", False), only(port, proto, (80, "TCP")) and r.set("x/b", "x/a", True))),

    # test_deny_policy_table / test_egress_deny_beats_egress_allow: an L3 allow
    # from every endpoint, an L4 deny on 80/TCP from namespace y and an L3 deny
    # from x/c; deny wins over allow.
    Replay("cnp-deny-beats-allow", "test_truth_cilium: deny.rst table (L3 allow + L4 80 deny, L3 deny)", """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-all-endpoints, namespace: x}
spec:
  endpointSelector: {}
  ingress:
    - fromEntities: [cluster]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-y-on-80, namespace: x}
spec:
  endpointSelector: {}
  ingressDeny:
    - fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: y}}]
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
    - fromEndpoints: [{matchLabels: {pod: c}}]
""", lambda r, port, proto: (r.set("x/c", "x/*", False),
                             only(port, proto, (80, "TCP")) and r.set("y/*", "x/*", False))),

    # test_clusterwide_policy_selects_every_namespace / test_clusterwide_namespace_labels:
    # a CCNP selects pod=c in every namespace; peers by namespace label.
    Replay("ccnp-namespace-labels", "test_truth_cilium: Clusterwide Policies (clusterscope-policy.yaml)", """
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: c-from-x}
spec:
  endpointSelector: {matchLabels: {pod: c}}
  ingress:
    - fromEndpoints: [{matchLabels: {io.cilium.k8s.namespace.labels.ns: x}}]
      toPorts:
        - ports: [{port: "80", protocol: TCP}, {port: "81", protocol: UDP}]
""", lambda r, port, proto: (r.set("*", "*/c", False),
                             only(port, proto, (80, "TCP"), (81, "UDP")) and r.set("x/*", "*/c", True))),
]

CASES = [from_e2e(n) for n in (
    "default-deny-ingress",
    "deny-ingress-from-other-namespaces",   # allow from the same namespace
    "namespace-selector-by-label",
    "pod-and-namespace-selector",           # podSelector AND namespaceSelector
    "egress-namespace-not-in",              # egress denied to y, allowed to x and z
    "named-port-from-namespace",            # serve-80-tcp
    "ipblock-except",
)] + CILIUM


@pytest.fixture(scope="module")
def lab(lab_factory):
    namespaces = {ns: {"labels": {"ns": ns}} for ns in NAMESPACES}
    # Ansible's pipelining (fewer round trips per task; the playbooks are the
    # same) keeps the eleven site.yml runs within the time budget.
    return lab_factory(PREFIX, hosts(), namespaces=namespaces, environment={"ANSIBLE_PIPELINING": "True"})


def cells():
    return [(port, proto, f, t) for port, proto in COMBOS for f in PODS for t in PODS if f != t]


def render(port, proto, want, real, computed):
    """The expected matrix with each differing cell marked: R real, C computed, B both differ."""
    lines = ["%d/%s  (rows: client, columns: server; '.' allow, 'X' deny, '-' loopback; "
             "R/C/B: real/computed/both differ from expected)" % (port, proto),
             "      " + " ".join(p.replace("/", "") for p in PODS)]
    for f in PODS:
        row = []
        for t in PODS:
            if f == t:
                row.append(" - ")
                continue
            mark = ".X"[not want[(f, t)]]
            bad_real = real[(f, t)] != want[(f, t)]
            bad_computed = computed[(f, t)] != want[(f, t)]
            if bad_real or bad_computed:
                mark = "B" if bad_real and bad_computed else ("R" if bad_real else "C")
            row.append(" %s " % mark)
        lines.append("%-5s " % f + "".join(row))
    return "\n".join(lines)


def word(allowed):
    return {True: "allow", False: "deny", None: "none"}[allowed]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_real_packets_match_the_truth_table(lab, case):
    lab.extra["palisade_policies"] = [d for d in yaml.safe_load_all(case.policies) if d]
    lab.write()
    lab.site()
    probes = [{"from": f, "to": pod_ip(t), "port": port, "protocol": proto} for port, proto, f, t in cells()]
    # Real packets, and meanwhile the computed verdicts and the second run
    # (which must change nothing, so it cannot disturb the probes).
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        probing = pool.submit(lab.probe, probes, timeout=1)
        computed = lab.trace(probes)
        rerun = lab.site()
        real = probing.result()
    assert len(real) == len(computed) == len(probes)
    failures = []
    for port, proto in COMBOS:
        want = case.expected(port, proto)
        got_real, got_computed, rows = {}, {}, []
        for (p_port, p_proto, f, t), r, c in zip(cells(), real, computed):
            if (p_port, p_proto) != (port, proto):
                continue
            got_real[(f, t)] = None if r is None else r == "allow"
            got_computed[(f, t)] = None if c is None else c == "allow"
            if got_real[(f, t)] != want[(f, t)] or got_computed[(f, t)] != want[(f, t)]:
                rows.append("  %s -> %s (%s) %d/%s: expected %s, real %s, computed %s" % (
                    f, t, pod_ip(t), port, proto, word(want[(f, t)]), word(got_real[(f, t)]),
                    word(got_computed[(f, t)])))
        if rows:
            failures.append(render(port, proto, want, got_real, got_computed) + "\n" + "\n".join(rows))
    if rerun.changed():
        failures.insert(0, "the second site.yml run (during the probes) was not a no-op: changed=%d\n%r" % (
            rerun.changed(), rerun))
    assert not failures, "case %s (%s): %d problem(s)\n%s" % (
        case.name, case.source, len(failures), "\n\n".join(failures))
