# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test harness for the policy engine: inventory + policy YAML + probes -> verdicts.

Every policy test reads the same way:

    lab = harness.Lab(endpoints=[...], policies='''<YAML as users write it>''')
    harness.check(lab, [(probe, "allow"), (probe, "l7-deny"), ...])

and runs the same pipeline as a playbook: hostvars in the docs/inventory.md
schema -> ``model.load_fleet`` -> ``parse.parse_documents`` ->
``engine.compute`` -> ``trace.trace``. Nothing here knows policy semantics;
it only builds inputs and compares outputs, so a wrong verdict is always the
engine's (or the expectation's), never the harness's.
"""

from __future__ import annotations

import ipaddress
import random

import yaml

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _model as model
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import engine, parse
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import trace as trace_mod


# --- inventory -------------------------------------------------------------

def ep(key, ipv4, labels=None, host="node1", ports=None):
    """One endpoint, written ``namespace/name`` (docs/inventory.md fields
    plus the ``host`` it lives on, as policy_trace's ``endpoints`` take it)."""
    namespace, dummy, name = key.rpartition("/")
    record = {"name": name, "namespace": namespace or "default", "ipv4": ipv4,
              "labels": dict(labels or {}), "host": host}
    if ports:
        record["ports"] = [dict(p) for p in ports]
    return record


def node_addresses(hosts, base="192.0.2.10"):
    """Deterministic node addresses for hosts that were not given one."""
    start = ipaddress.IPv4Address(base)
    return {host: str(start + i + 1) for i, host in enumerate(sorted(hosts))}


def hostvars(endpoints, nodes=None):
    """Inventory hostvars (docs/inventory.md) for endpoints carrying a ``host``.

    ``nodes`` maps host -> node IPv4 (or -> a full ``palisade_node`` dict);
    hosts without an entry get an address from ``node_addresses``. Hosts in
    ``nodes`` without endpoints are still nodes (they matter for host and
    remote-node identities).
    """
    nodes = dict(nodes or {})
    hosts = sorted(set(nodes) | {e["host"] for e in endpoints})
    auto = node_addresses([h for h in hosts if h not in nodes])
    result = {}
    for host in hosts:
        node = nodes.get(host, auto.get(host))
        if isinstance(node, str):
            node = {"ipv4": node}
        result[host] = {"palisade_node": dict(node), "palisade_endpoints": []}
    for e in endpoints:
        record = {k: v for k, v in e.items() if k != "host"}
        result[e["host"]]["palisade_endpoints"].append(record)
    return result


# --- policy documents ------------------------------------------------------

def documents(policies, prefix="palisade_policies"):
    """Policy documents as ``[(origin, document)]``.

    ``policies`` is YAML text (one or more ``---`` separated documents, as in
    a policy file), a single document dict, or a list of dicts and/or texts.
    Pairs ``(origin, document)`` are passed through, so a test can pin the
    origin of a document (the property tests do, to shuffle documents without
    renaming them).
    """
    if policies is None:
        return []
    if isinstance(policies, (str, dict)):
        policies = [policies]
    docs = []
    for item in policies:
        if isinstance(item, tuple):
            docs.append(item)
        elif isinstance(item, str):
            docs.extend(d for d in yaml.safe_load_all(item) if d is not None)
        else:
            docs.append(item)
    return [d if isinstance(d, tuple) else ("%s[%d]" % (prefix, i), d) for i, d in enumerate(docs)]


# --- the pipeline ----------------------------------------------------------

class Lab:
    """An inventory plus policies, computed once; ``trace`` answers probes."""

    def __init__(self, endpoints, policies=None, namespaces=None, nodes=None):
        self.endpoints = list(endpoints)
        self.hostvars = hostvars(self.endpoints, nodes)
        self.namespaces = namespaces
        self.documents = documents(policies)
        self.fleet = model.load_fleet(self.hostvars, namespaces)
        self.rules = parse.parse_documents(self.documents)
        self.policy = engine.compute(self.fleet, self.rules)

    @classmethod
    def from_inventory(cls, hostvars_, policies=None, namespaces=None):
        """A lab from ready-made hostvars (e.g. a real inventory file)."""
        lab = cls.__new__(cls)
        lab.endpoints = None
        lab.hostvars = hostvars_
        lab.namespaces = namespaces
        lab.documents = documents(policies)
        lab.fleet = model.load_fleet(hostvars_, namespaces)
        lab.rules = parse.parse_documents(lab.documents)
        lab.policy = engine.compute(lab.fleet, lab.rules)
        return lab

    def trace(self, probes):
        return trace_mod.trace(self.policy, [dict(p) for p in probes])

    def host_share(self, host):
        return self.policy.host_share(host)


def probe(frm, to, port=80, protocol="TCP", http=None):
    """A policy_trace probe (docs/inventory.md)."""
    p = {"from": frm, "to": to, "port": port, "protocol": protocol}
    if http is not None:
        p["http"] = dict(http)
    return p


def http(method="GET", path="/", headers=None):
    h = {"method": method, "path": path}
    if headers is not None:
        h["headers"] = dict(headers)
    return h


# --- expectations ----------------------------------------------------------
#
# Expected outcomes, by name:
#   allow     verdict allow, l4 allow, and no L7 restriction applied
#             (l7 null: the port is not redirected, or an L4-only rule
#             cancelled the L7 rules)
#   l7-allow  verdict allow, l4 allow, l7 allow (the request matched an HTTP rule)
#   l7-deny   verdict deny, l4 allow, l7 deny (redirected; no HTTP rule matched)
#   deny      verdict deny, l4 deny (dropped before L7)
#   pass      verdict allow, l4 allow, l7 not looked at (for probes without http
#             to a redirected port: the TCP connection is established)
OUTCOMES = {
    "allow": {"verdict": "allow", "l4": "allow", "l7": None},
    "l7-allow": {"verdict": "allow", "l4": "allow", "l7": "allow"},
    "l7-deny": {"verdict": "deny", "l4": "allow", "l7": "deny"},
    "deny": {"verdict": "deny", "l4": "deny"},
    "pass": {"verdict": "allow", "l4": "allow"},
}


def describe(p):
    text = "%s -> %s %s/%s" % (p["from"], p["to"], p["port"], p.get("protocol", "TCP"))
    if p.get("http"):
        h = p["http"]
        text += " %s %s" % (h.get("method", "GET"), h.get("path", "/"))
        if h.get("headers"):
            text += " %s" % (h["headers"],)
    return text


def outcome_mismatch(result, expected):
    """None when ``result`` is the expected outcome, else a short description."""
    want = OUTCOMES[expected]
    wrong = {k: result.get(k) for k, v in want.items() if result.get(k) != v}
    if not wrong:
        return None
    return "expected %s, got verdict=%s l4=%s l7=%s (%s; policies %s)" % (
        expected, result.get("verdict"), result.get("l4"), result.get("l7"),
        result.get("reason"), result.get("policies"))


def check(lab, table, policies_for=None):
    """Trace every probe of ``table`` ([(probe, outcome)]) in one batch and
    fail with every differing row, not just the first.

    ``policies_for`` optionally maps a row index to the policy names that must
    be reported as having decided that row.
    """
    probes = [row[0] for row in table]
    results = lab.trace(probes)
    assert len(results) == len(probes), "trace returned %d results for %d probes" % (len(results), len(probes))
    errors = []
    for i, ((p, expected), result) in enumerate(zip(table, results)):
        problem = outcome_mismatch(result, expected)
        if problem:
            errors.append("  [%d] %s: %s" % (i, describe(p), problem))
        if policies_for and i in policies_for:
            want = sorted(policies_for[i])
            got = sorted(result.get("policies") or [])
            if got != want:
                errors.append("  [%d] %s: expected deciding policies %s, got %s" % (i, describe(p), want, got))
    assert not errors, "%d of %d probes differ:\n%s" % (len(errors), len(table), "\n".join(errors))
    return results


# --- helpers for property tests --------------------------------------------

def shuffled(items, seed):
    items = list(items)
    random.Random(seed).shuffle(items)
    return items


def endpoint_identities(lab, host):
    """``namespace/name -> identity`` for every endpoint of the fleet, as
    ``host``'s share sees it (its IP -> identity table, and for its own
    endpoints the identity it enforces)."""
    share = lab.host_share(host)
    table = share["ipcache"]
    result = {}
    for node in lab.fleet["nodes"].values():
        for e in node["endpoints"]:
            result["%s/%s" % (e["namespace"], e["name"])] = table["%s/32" % e["ipv4"]]
    for e in share["endpoints"]:
        key = "%s/%s" % (e["namespace"], e["name"])
        assert result[key] == e["identity"], "%s: share says identity %s, IP table %s" % (
            key, e["identity"], result[key])
    return result


def canonical(value):
    """A JSON-ready copy of a share (tuples as lists, keys as text), for
    comparing shares across processes."""
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(canonical(v) for v in value)
    return value
