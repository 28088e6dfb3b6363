# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes network-policy e2e model and its cases, as truth tables.

The model of kubernetes test/e2e/network/netpol (model.go, network_policy.go):
namespaces x, y, z labelled ``ns=<name>`` (plus the
``kubernetes.io/metadata.name`` label every namespace carries), pods a, b, c in
each, labelled ``pod=<name>``, every pod serving ports 80 and 81 on TCP, UDP and
SCTP under the port names ``serve-<port>-<protocol>``.

Each case rewrites one upstream ``It(...)`` (named in ``upstream``) as
NetworkPolicy YAML and states the expected 9x9 reachability matrix for every
(port, protocol) the model serves, the way upstream does: everything allowed,
then exceptions (``Reachability.set``). Upstream checks one or two
(port, protocol) pairs per case; here every pair is checked, with the
expectation for the others derived from the same policy (a policy without
``ports`` covers every port and protocol; a port without ``protocol`` is TCP).

As upstream (ignoreLoopback, kubernetes#95879), a pod's traffic to itself is
not compared: whether it crosses the policy is datapath-specific.
"""

from __future__ import annotations

import fnmatch

from tests.support.policy_harness import ep

NAMESPACES = ("x", "y", "z")
PODS_PER_NS = ("a", "b", "c")
PODS = tuple("%s/%s" % (ns, p) for ns in NAMESPACES for p in PODS_PER_NS)
PORTS = (80, 81)
PROTOCOLS = ("TCP", "UDP", "SCTP")
COMBOS = tuple((port, proto) for port in PORTS for proto in PROTOCOLS)


def pod_ip(pod):
    ns, name = pod.split("/")
    return "10.0.%d.%d" % (NAMESPACES.index(ns) + 1, PODS_PER_NS.index(name) + 1)


def model_endpoints(extra_labels=None):
    """The 9 pods, spread over three nodes by pod name so that most probes
    cross nodes and some stay on one."""
    extra_labels = extra_labels or {}
    ports = [{"name": "serve-%d-%s" % (port, proto.lower()), "port": port, "protocol": proto}
             for port in PORTS for proto in PROTOCOLS]
    endpoints = []
    for pod in PODS:
        ns, name = pod.split("/")
        labels = {"pod": name}
        labels.update(extra_labels.get(pod, {}))
        endpoints.append(ep(pod, pod_ip(pod), labels=labels, host="node-%s" % name, ports=ports))
    return endpoints


def model_namespaces(extra=None):
    extra = extra or {}
    return {ns: {"labels": dict({"ns": ns}, **extra.get(ns, {}))} for ns in NAMESPACES}


class Reachability:
    """The expected matrix, from -> to, as upstream's reachability.go: a
    default, then exceptions. Patterns: ``x/a``, ``x/*``, ``*/a``, ``*``."""

    def __init__(self, default=True):
        self.cells = {(f, t): default for f in PODS for t in PODS}

    @staticmethod
    def _pods(pattern):
        if pattern == "*":
            return PODS
        matched = [p for p in PODS if fnmatch.fnmatchcase(p, pattern)]
        assert matched, "pattern %r matches no pod" % pattern
        return matched

    def set(self, frm, to, allowed):
        for f in self._pods(frm):
            for t in self._pods(to):
                self.cells[(f, t)] = allowed
        return self


def render(cells):
    """A truth table like upstream's: rows are clients, columns servers;
    '.' reachable, 'X' not, '-' not compared (loopback)."""
    lines = ["      " + " ".join(p.replace("/", "") for p in PODS)]
    for f in PODS:
        row = []
        for t in PODS:
            row.append(" - " if f == t else (" . " if cells[(f, t)] else " X "))
        lines.append("%-5s " % f + "".join(row))
    return "\n".join(lines)


class Case:
    def __init__(self, name, upstream, policies, expect, pod_labels=None, ns_labels=None):
        self.name = name
        self.upstream = upstream
        self.policies = policies
        self.expect = expect
        self.pod_labels = pod_labels
        self.ns_labels = ns_labels

    def expected(self, port, proto):
        r = Reachability(True)
        self.expect(r, port, proto)
        return r.cells


def only(port, proto, *allowed):
    """True when (port, proto) is one of ``allowed`` ((port, proto) pairs)."""
    return (port, proto) in allowed


CASES = [
    # ------------------------------------------------------------------ deny
    Case("default-deny-ingress", "should support a 'default-deny-ingress' policy (TCP, UDP and SCTP variants)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
""", lambda r, port, proto: r.set("*", "x/*", False)),

    Case("default-deny-all", "should support a 'default-deny-all' policy",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress: []
  egress: []
""", lambda r, port, proto: (r.set("*", "x/*", False), r.set("x/*", "*", False))),

    Case("default-deny-egress-namespace", "should deny egress from all pods in a namespace",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress-ns-x, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
""", lambda r, port, proto: r.set("x/*", "*", False)),

    Case("deny-egress-one-pod", "should deny egress from pods based on PodSelector",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress-pod-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: []
""", lambda r, port, proto: r.set("x/a", "*", False)),

    Case("deny-ingress-from-other-namespaces", "should deny ingress from pods on other namespaces",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-empty-policy, namespace: x}
spec:
  podSelector: {}
  ingress:
    - from:
        - podSelector: {}
""", lambda r, port, proto: (r.set("y/*", "x/*", False), r.set("z/*", "x/*", False))),

    # ------------------------------------------------- selectors, same namespace
    Case("pod-selector-same-namespace",
         "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x-a-allows-x-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector: {matchLabels: {pod: b}}
""", lambda r, port, proto: (r.set("*", "x/a", False), r.set("x/b", "x/a", True))),

    Case("pod-selector-match-expressions", "should enforce policy based on PodSelector with MatchExpressions",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x-a-allows-x-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector:
            matchExpressions:
              - {key: pod, operator: In, values: [b]}
""", lambda r, port, proto: (r.set("*", "x/a", False), r.set("x/b", "x/a", True))),

    Case("any-pod-selectors", "should enforce policy based on any PodSelectors",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-x-pod-b-c, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector: {matchLabels: {pod: b}}
        - podSelector: {matchLabels: {pod: c}}
""", lambda r, port, proto: (r.set("*", "x/a", False), r.set("x/b", "x/a", True), r.set("x/c", "x/a", True))),

    Case("allow-ingress-for-target", "should enforce policy to allow ingress traffic for a target",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: []
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all-to-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector: {}
          namespaceSelector: {}
""", lambda r, port, proto: (r.set("*", "x/*", False), r.set("*", "x/a", True))),

    # ---------------------------------------------------- namespace selectors
    Case("namespace-selector-all", "should enforce policy to allow ingress traffic from pods in all namespaces",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-from-another-ns, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {}}
""", lambda r, port, proto: None),

    Case("namespace-selector-by-label",
         "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-ns-selector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {ns: y}}
""", lambda r, port, proto: (r.set("x/*", "x/a", False), r.set("z/*", "x/a", False))),

    Case("namespace-selector-default-ns-label",
         "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-ns-selector-for-immutable-ns-label, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
""", lambda r, port, proto: (r.set("x/*", "x/a", False), r.set("z/*", "x/a", False))),

    Case("namespace-selector-match-expressions", "should enforce policy based on NamespaceSelector with MatchExpressions",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-y-match-selector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector:
            matchExpressions:
              - {key: ns, operator: In, values: [y]}
""", lambda r, port, proto: (r.set("x/*", "x/a", False), r.set("z/*", "x/a", False))),

    Case("egress-namespace-not-in",
         "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-y-match-selector-for-immutable-ns-label, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to:
        - namespaceSelector:
            matchExpressions:
              - {key: kubernetes.io/metadata.name, operator: NotIn, values: [y]}
""", lambda r, port, proto: r.set("x/a", "y/*", False)),

    Case("namespace-labels-updated", "should allow ingress access from updated namespace (after the label is added)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-ns-selector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {ns2: updated}}
""", lambda r, port, proto: (r.set("*", "x/a", False), r.set("y/*", "x/a", True)),
         ns_labels={"y": {"ns2": "updated"}}),

    # --------------------------------------- podSelector + namespaceSelector
    Case("pod-or-namespace-selector", "should enforce policy based on PodSelector or NamespaceSelector",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-y-match-selector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector:
            matchExpressions:
              - {key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}
        - podSelector: {matchLabels: {pod: b}}
""", lambda r, port, proto: r.set("x/c", "x/a", False)),

    Case("pod-and-namespace-selector", "should enforce policy based on PodSelector and NamespaceSelector",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-y-podselector-and-nsselector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector:
            matchExpressions:
              - {key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}
          podSelector: {matchLabels: {pod: b}}
""", lambda r, port, proto: (r.set("*", "x/a", False), r.set("y/b", "x/a", True), r.set("z/b", "x/a", True))),

    Case("multiple-pod-and-namespace-selectors",
         "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-y-z-pod-b-c, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector:
            matchExpressions:
              - {key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}
          podSelector:
            matchExpressions:
              - {key: pod, operator: In, values: [b, c]}
""", lambda r, port, proto: (r.set("*", "x/a", False), r.set("y/b", "x/a", True), r.set("y/c", "x/a", True),
                             r.set("z/b", "x/a", True), r.set("z/c", "x/a", True))),

    Case("single-pod-in-other-namespace",
         "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and "
         "NamespaceSelector (TCP, UDP and SCTP variants)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-y-pod-a-via-namespace-pod-selector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
          podSelector: {matchLabels: {pod: a}}
""", lambda r, port, proto: (r.set("*", "x/a", False), r.set("y/a", "x/a", True))),

    Case("pod-labels-updated", "should allow ingress access from updated pod (after the label is added)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-pod-selector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector: {matchLabels: {pod: b, pod2: updated}}
""", lambda r, port, proto: (r.set("*", "x/a", False), r.set("x/b", "x/a", True)),
         pod_labels={"x/b": {"pod2": "updated"}}),

    Case("isolate-updated-pod", "should deny ingress access to updated pod (after the label is added)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress-via-label-selector, namespace: x}
spec:
  podSelector: {matchLabels: {target: isolated}}
  policyTypes: [Ingress]
  ingress: []
""", lambda r, port, proto: r.set("*", "x/a", False), pod_labels={"x/a": {"target": "isolated"}}),

    # ------------------------------------------------------------------- ports
    Case("port-81-from-namespace", "should enforce policy based on Ports (TCP, UDP and SCTP variants: TCP here)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-ns-selector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
      ports:
        - {port: 81, protocol: TCP}
""", lambda r, port, proto: (r.set("*", "x/a", False),
                             only(port, proto, (81, "TCP")) and r.set("y/*", "x/a", True))),

    Case("port-81-udp-from-namespace", "NetworkPolicy between server and client using UDP: should enforce policy based on Ports",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ingress-on-port-81-ns-x, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
      ports:
        - {port: 81, protocol: UDP}
""", lambda r, port, proto: (r.set("*", "x/a", False),
                             only(port, proto, (81, "UDP")) and r.set("y/*", "x/a", True))),

    Case("stacked-policies-union", "should enforce multiple, stacked policies with overlapping podSelectors",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-ns-selector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
      ports:
        - {port: 81, protocol: TCP}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-ns-selector-80, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
      ports:
        - {port: 80, protocol: TCP}
""", lambda r, port, proto: (r.set("*", "x/a", False),
                             proto == "TCP" and r.set("y/*", "x/a", True))),

    Case("any-port-on-protocol", "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ingress-by-proto, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - ports:
        - protocol: TCP
""", lambda r, port, proto: proto != "TCP" and r.set("*", "x/a", False)),

    Case("sctp-is-not-tcp",
         "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: []
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-only-sctp-ingress-on-port-81, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - ports:
        - {port: 81, protocol: SCTP}
""", lambda r, port, proto: (r.set("*", "x/*", False),
                             only(port, proto, (81, "SCTP")) and r.set("*", "x/a", True))),

    Case("sctp-allow-isolates-pod",
         "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-only-sctp-ingress-on-port-80, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - ports:
        - {port: 80, protocol: SCTP}
""", lambda r, port, proto: not only(port, proto, (80, "SCTP")) and r.set("*", "x/a", False)),

    Case("udp-only-is-not-tcp", "should not allow access by TCP when a policy specifies only UDP",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-only-udp-ingress-on-port-81, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - ports:
        - {port: 81, protocol: UDP}
""", lambda r, port, proto: not only(port, proto, (81, "UDP")) and r.set("*", "x/a", False)),

    # Port ranges: the NetworkPolicy endPort field (KEP-2079; kubernetes.io docs
    # "Network Policies", section "Targeting a range of ports"). Written in the
    # e2e model's style; the current network_policy.go has no endPort case.
    Case("end-port-range-tcp", "KEP-2079 endPort: ingress on TCP 80-81 from namespace y",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-range-80-81, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {ns: y}}
      ports:
        - {protocol: TCP, port: 80, endPort: 81}
""", lambda r, port, proto: (r.set("*", "x/a", False), proto == "TCP" and r.set("y/*", "x/a", True))),

    Case("end-port-range-udp-excludes-80", "KEP-2079 endPort: ingress on UDP 81-8080 (80 is outside the range)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-udp-81-8080, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - ports:
        - {protocol: UDP, port: 81, endPort: 8080}
""", lambda r, port, proto: not only(port, proto, (81, "UDP")) and r.set("*", "x/a", False)),

    Case("end-port-range-egress-sctp", "KEP-2079 endPort: egress from x on SCTP 1-80",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-egress-sctp-1-80, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - ports:
        - {protocol: SCTP, port: 1, endPort: 80}
""", lambda r, port, proto: not only(port, proto, (80, "SCTP")) and r.set("x/*", "*", False)),

    # ------------------------------------------------------------- named ports
    Case("named-port-ingress", "should allow ingress access on one named port",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - ports:
        - port: serve-81-tcp
""", lambda r, port, proto: not only(port, proto, (81, "TCP")) and r.set("*", "x/*", False)),

    Case("named-port-ingress-udp", "should allow ingress access on one named port (a UDP port name, protocol UDP)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-serve-81-udp, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - ports:
        - {port: serve-81-udp, protocol: UDP}
""", lambda r, port, proto: not only(port, proto, (81, "UDP")) and r.set("*", "x/*", False)),

    Case("named-port-from-namespace", "should allow ingress access from namespace on one named port",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-ns-selector-80, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
      ports:
        - {port: serve-80-tcp, protocol: TCP}
""", lambda r, port, proto: (r.set("*", "x/a", False),
                             only(port, proto, (80, "TCP")) and r.set("y/*", "x/a", True))),

    Case("named-port-egress", "should allow egress access on one named port",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-egress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - ports:
        - port: serve-80-tcp
""", lambda r, port, proto: not only(port, proto, (80, "TCP")) and r.set("x/*", "*", False)),

    # ------------------------------------------------- allow-all and precedence
    Case("allow-all-ingress-empty-rule", "should support allow-all policy (ingress: [{}])",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - {}
""", lambda r, port, proto: None),

    Case("ingress-port-80-only", "should enforce multiple ingress policies with ingress allow-all policy taking precedence "
         "(first step: the port-80 policy alone)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ingress-port-80, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - ports:
        - port: 80
""", lambda r, port, proto: not only(port, proto, (80, "TCP")) and r.set("*", "x/*", False)),

    Case("ingress-allow-all-takes-precedence",
         "should enforce multiple ingress policies with ingress allow-all policy taking precedence",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ingress-port-80, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - ports:
        - port: 80
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ingress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - {}
""", lambda r, port, proto: None),

    Case("egress-port-80-only", "should enforce multiple egress policies with egress allow-all policy taking precedence "
         "(first step: the port-80 policy alone)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-egress-port-80, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - ports:
        - port: 80
""", lambda r, port, proto: not only(port, proto, (80, "TCP")) and r.set("x/*", "*", False)),

    Case("egress-allow-all-takes-precedence",
         "should enforce multiple egress policies with egress allow-all policy taking precedence",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-egress-port-80, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - ports:
        - port: 80
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-egress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - {}
""", lambda r, port, proto: None),

    # --------------------------------------------------------- egress to pods
    Case("ingress-and-egress-together", "should work with Ingress, Egress specified together",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-pod-selector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress, Ingress]
  ingress:
    - from:
        - podSelector: {matchLabels: {pod: b}}
  egress:
    - ports:
        - port: 80
""", lambda r, port, proto: (r.set("*", "x/a", False), r.set("x/b", "x/a", True),
                             not only(port, proto, (80, "TCP")) and r.set("x/a", "*", False))),

    Case("client-side-egress-denial",
         "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-to-ns-y-pod-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
          podSelector: {matchLabels: {pod: a}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-from-xa-on-ya-match-selector, namespace: y}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}
          podSelector: {matchLabels: {pod: a}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-from-xa-on-yb-match-selector, namespace: y}
spec:
  podSelector: {matchLabels: {pod: b}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}
          podSelector: {matchLabels: {pod: a}}
""", lambda r, port, proto: (r.set("x/a", "*", False), r.set("*", "y/a", False), r.set("*", "y/b", False),
                             r.set("x/a", "y/a", True))),

    Case("egress-to-pod-in-other-namespace",
         "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and "
         "NamespaceSelector",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-to-ns-y-pod-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
          podSelector: {matchLabels: {pod: a}}
""", lambda r, port, proto: (r.set("x/a", "*", False), r.set("x/a", "y/a", True))),

    Case("ingress-and-egress-independent",
         "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-egress-for-target, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - {}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress-via-label-selector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress: []
""", lambda r, port, proto: r.set("*", "x/a", False)),

    # ------------------------------------------------------- ipBlock (pod IPs)
    Case("ipblock-egress-to-pod", "should allow egress access to server in CIDR block",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-cidr-egress-rule, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to:
        - ipBlock: {cidr: 10.0.2.2/32}
""", lambda r, port, proto: (r.set("x/a", "*", False), r.set("x/a", "y/b", True))),

    Case("ipblock-except", "should enforce except clause while egress access to server in CIDR block",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-cidr-egress-rule, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to:
        - ipBlock:
            cidr: 0.0.0.0/4
            except: [10.0.1.2/32]
""", lambda r, port, proto: r.set("x/a", "x/b", False)),

    Case("ipblock-overlapping-cidr-and-except",
         "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed (two policies, union)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-cidr-egress-rule, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to:
        - ipBlock:
            cidr: 0.0.0.0/4
            except: [10.0.1.2/32]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-to-x-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to:
        - ipBlock: {cidr: 10.0.1.2/32}
""", lambda r, port, proto: None),

    Case("ipblock-ingress-from-pod", "ipBlock on ingress selects a pod by its address (the egress CIDR case, mirrored)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-from-y-b-cidr, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - ipBlock: {cidr: 10.0.2.2/32}
      ports:
        - {port: 81, protocol: UDP}
""", lambda r, port, proto: (r.set("*", "x/a", False),
                             only(port, proto, (81, "UDP")) and r.set("y/b", "x/a", True))),

    # policyTypes defaulting (NetworkPolicySpec.policyTypes, k8s.io/api
    # networking/v1 types.go, SetDefaults_NetworkPolicySpec): every policy
    # affects ingress unless policyTypes says otherwise; Egress is implied
    # only by a non-empty egress list; rules of a direction the policy does
    # not relate to are ignored.
    Case("policy-types-default-with-empty-egress",
         "policyTypes defaulting: no policyTypes, egress: [] -> Ingress only (isolates ingress, not egress)",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: empty-egress, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress: []
""", lambda r, port, proto: r.set("*", "x/a", False)),

    Case("policy-types-egress-ignores-ingress-rules",
         "policyTypes [Egress]: the policy's ingress rules do not apply",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  ingress:
    - from:
        - podSelector: {matchLabels: {pod: b}}
  egress:
    - {}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
""", lambda r, port, proto: r.set("*", "x/a", False)),

    Case("policy-in-other-namespace-does-not-leak", "policies live in their namespace: a deny-all in y leaves x alone",
         """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: y}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-from-x, namespace: y}
spec:
  podSelector: {matchLabels: {pod: c}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {ns: x}}
""", lambda r, port, proto: (r.set("*", "y/*", False), r.set("y/*", "*", False), r.set("x/*", "y/c", True))),
]

assert len({c.name for c in CASES}) == len(CASES)
