# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property tests of the policy engine over generated small fleets and rule sets.

- deny always wins: adding a deny never turns a deny into an allow, and every
  probe a deny matches (by an independent oracle below) is denied;
- adding an allow never removes access (for L3/L4 allows, where an endpoint's
  direction is already enforced or the allow does not enforce -- adding a rule
  that turns default deny on, or an HTTP rule, may legitimately remove access:
  docs/policy-engine.md "Default deny", layer7.rst);
- document order does not matter: shuffled documents, ``specs`` and rule lists
  give identical verdicts and identical per-host shares;
- identities of existing endpoints do not move when unrelated endpoints and
  label sets are added or removed;
- trace is deterministic (also across interpreter hash seeds).
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import policy_harness as harness
from tests.support.policy_fleets import HOSTS, PORTS, WORLD, identities, make_lab, probes_for
from tests.support.paths import REPO

ROOT = REPO
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NAMESPACES = ("ns-a", "ns-b")
APPS = ("web", "db", "api")
ENVS = ("prod", "dev")


# --- fleets ------------------------------------------------------------------

@st.composite
def endpoint_specs(draw, index):
    labels = {"app": draw(st.sampled_from(APPS))}
    env = draw(st.sampled_from(ENVS + (None,)))
    if env:
        labels["env"] = env
    ports = None
    if draw(st.booleans()):
        ports = [{"name": "http", "port": draw(st.sampled_from((80, 8080))), "protocol": "TCP"}]
    return {
        "name": "e%d" % index,
        "namespace": draw(st.sampled_from(NAMESPACES)),
        "labels": labels,
        "host": draw(st.sampled_from(HOSTS)),
        "ports": ports,
    }


@st.composite
def fleets(draw, min_size=2, max_size=5):
    n = draw(st.integers(min_size, max_size))
    specs = [draw(endpoint_specs(i)) for i in range(n)]
    ns_labels = {ns: {"labels": {"team": draw(st.sampled_from(("red", "blue")))}} for ns in NAMESPACES}
    return specs, ns_labels


# --- policy documents ----------------------------------------------------------

def selector():
    labels = st.one_of(
        st.just({}),
        st.builds(lambda a: {"matchLabels": {"app": a}}, st.sampled_from(APPS)),
        st.builds(lambda e: {"matchLabels": {"env": e}}, st.sampled_from(ENVS)),
        st.builds(lambda a, e: {"matchLabels": {"app": a, "env": e}}, st.sampled_from(APPS), st.sampled_from(ENVS)),
        st.builds(lambda op, vals: {"matchExpressions": [{"key": "app", "operator": op, "values": sorted(vals)}]},
                  st.sampled_from(("In", "NotIn")), st.sets(st.sampled_from(APPS), min_size=1, max_size=2)),
        st.builds(lambda op: {"matchExpressions": [{"key": "env", "operator": op}]},
                  st.sampled_from(("Exists", "DoesNotExist"))),
    )
    return labels


def port_list(allow_named=True):
    one = st.one_of(
        st.builds(lambda p, proto: dict({"port": str(p)}, **({"protocol": proto} if proto else {})),
                  st.sampled_from(PORTS), st.sampled_from(("TCP", "UDP", None))),
        st.builds(lambda proto: {"port": "80", "endPort": 443, "protocol": proto}, st.sampled_from(("TCP", "UDP"))),
        *([st.just({"port": "http", "protocol": "TCP"})] if allow_named else []),
    )
    return st.lists(one, min_size=1, max_size=2)


@st.composite
def cilium_peer_rule(draw, direction, deny=False, with_http=False):
    prefix = "from" if direction == "ingress" else "to"
    rule = {}
    peer = draw(st.sampled_from(("endpoints", "endpoints", "entities", "cidr", "none")))
    if peer == "endpoints":
        rule[prefix + "Endpoints"] = draw(st.lists(selector(), min_size=1, max_size=2))
    elif peer == "entities":
        rule[prefix + "Entities"] = [draw(st.sampled_from(("world", "cluster", "all", "host", "remote-node")))]
    elif peer == "cidr":
        if draw(st.booleans()):
            rule[prefix + "CIDR"] = [draw(st.sampled_from(("203.0.113.0/24", "10.9.0.0/16", "0.0.0.0/0")))]
        else:
            rule[prefix + "CIDRSet"] = [{"cidr": "203.0.113.0/24", "except": ["203.0.113.0/28"]}]
    if peer == "none" or draw(st.booleans()):
        entry = {"ports": draw(port_list(allow_named=not deny))}
        if with_http and not deny and draw(st.booleans()):
            entry = {"ports": [{"port": "80", "protocol": "TCP"}],
                     "rules": {"http": [{"method": "GET", "path": "/public"}]}}
        rule["toPorts"] = [entry]
    return rule


@st.composite
def cilium_spec(draw, with_http=True, allow_deny=True, default_deny=True):
    spec = {"endpointSelector": draw(selector())}
    sections = draw(st.sets(st.sampled_from(
        ("ingress", "egress") + (("ingressDeny", "egressDeny") if allow_deny else ())), min_size=1, max_size=2))
    for section in sorted(sections):
        direction = "ingress" if section.startswith("ingress") else "egress"
        deny = section.endswith("Deny")
        spec[section] = draw(st.lists(cilium_peer_rule(direction, deny=deny, with_http=with_http),
                                      min_size=1, max_size=2))
    if not default_deny:
        spec["enableDefaultDeny"] = {"ingress": False, "egress": False}
    return spec


@st.composite
def knp_document(draw, name):
    spec = {"podSelector": draw(selector())}
    types = draw(st.sets(st.sampled_from(("Ingress", "Egress")), min_size=1, max_size=2))
    spec["policyTypes"] = sorted(types)
    for t in sorted(types):
        field, peers = ("ingress", "from") if t == "Ingress" else ("egress", "to")
        rules = []
        for dummy in range(draw(st.integers(0, 2))):
            rule = {}
            kind = draw(st.sampled_from(("pod", "ns", "both", "ipblock", "none")))
            if kind == "pod":
                rule[peers] = [{"podSelector": draw(selector())}]
            elif kind == "ns":
                rule[peers] = [{"namespaceSelector": {"matchLabels": {"team": draw(st.sampled_from(("red", "blue")))}}}]
            elif kind == "both":
                rule[peers] = [{"namespaceSelector": {}, "podSelector": draw(selector())}]
            elif kind == "ipblock":
                rule[peers] = [{"ipBlock": {"cidr": draw(st.sampled_from(("10.9.0.0/16", "0.0.0.0/0"))),
                                            "except": ["10.9.0.0/30"]}}]
            if draw(st.booleans()):
                rule["ports"] = [{"port": draw(st.sampled_from(PORTS)),
                                  "protocol": draw(st.sampled_from(("TCP", "UDP")))}]
            rules.append(rule)
        spec[field] = rules
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": draw(st.sampled_from(NAMESPACES))}, "spec": spec}


@st.composite
def policy_document(draw, name, with_http=True, allow_deny=True, default_deny=True, knp=True):
    kinds = ["CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"] + (["NetworkPolicy"] if knp else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "NetworkPolicy":
        return draw(knp_document(name))
    doc = {"apiVersion": "cilium.io/v2", "kind": kind, "metadata": {"name": name}}
    if kind == "CiliumNetworkPolicy":
        doc["metadata"]["namespace"] = draw(st.sampled_from(NAMESPACES))
    if draw(st.integers(0, 3)) == 0:
        doc["specs"] = [draw(cilium_spec(with_http, allow_deny, default_deny)) for dummy in range(2)]
    else:
        doc["spec"] = draw(cilium_spec(with_http, allow_deny, default_deny))
    return doc


@st.composite
def rule_sets(draw, prefix="p", max_docs=4):
    n = draw(st.integers(0, max_docs))
    return [("%s/%s%d.yaml#0" % ("policies", prefix, i), draw(policy_document("%s%d" % (prefix, i))))
            for i in range(n)]


# --- a deny oracle ---------------------------------------------------------------
#
# Deny documents for the "deny always wins" property are CCNPs whose match is
# easy to state independently of the engine: subject and peer selectors over
# app/env labels (a CCNP peer selector reaches every namespace), the entities
# all/world, and numeric ports.

@st.composite
def deny_documents(draw):
    direction = draw(st.sampled_from(("ingress", "egress")))
    prefix = "from" if direction == "ingress" else "to"
    subject = draw(selector())
    peer_kind = draw(st.sampled_from(("endpoints", "all", "world")))
    rule = {}
    if peer_kind == "endpoints":
        rule[prefix + "Endpoints"] = [draw(selector())]
    else:
        rule[prefix + "Entities"] = [peer_kind]
    ports = None
    if draw(st.booleans()):
        ports = draw(st.lists(st.builds(lambda p, proto: dict({"port": str(p)}, **({"protocol": proto} if proto else {})),
                                        st.sampled_from(PORTS), st.sampled_from(("TCP", "UDP", None))),
                              min_size=1, max_size=2))
        rule["toPorts"] = [{"ports": ports}]
    doc = {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
           "metadata": {"name": "the-deny"},
           "spec": {"endpointSelector": subject, direction + "Deny": [rule]}}
    return doc


def selector_matches(sel, labels):
    for key, value in (sel.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for req in sel.get("matchExpressions") or []:
        present = req["key"] in labels
        value = labels.get(req["key"])
        op = req["operator"]
        if op == "In" and value not in req["values"]:
            return False
        if op == "NotIn" and present and value in req["values"]:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def deny_matches(doc, specs, p):
    """Does the deny document ``doc`` match probe ``p``? (independent oracle)"""
    by_key = {"%s/%s" % (s["namespace"], s["name"]): s for s in specs}
    spec = doc["spec"]
    direction = "ingress" if "ingressDeny" in spec else "egress"
    rule = spec[direction + "Deny"][0]
    subject, peer = (p["to"], p["from"]) if direction == "ingress" else (p["from"], p["to"])
    if subject not in by_key or not selector_matches(spec["endpointSelector"], by_key[subject]["labels"]):
        return False
    prefix = "from" if direction == "ingress" else "to"
    if prefix + "Endpoints" in rule:
        if peer not in by_key or not selector_matches(rule[prefix + "Endpoints"][0], by_key[peer]["labels"]):
            return False
    elif rule[prefix + "Entities"] == ["world"]:
        if peer != WORLD:
            return False
    if "toPorts" in rule:
        ok = False
        for port in rule["toPorts"][0]["ports"]:
            if int(port["port"]) == p["port"] and port.get("protocol", p.get("protocol", "TCP")) == p.get("protocol", "TCP"):
                ok = True
        if not ok:
            return False
    return True


def verdict_key(result):
    return (result["verdict"], result["l4"], result["l7"])


# --- properties ----------------------------------------------------------------

@SETTINGS
@given(fleet=fleets(), rules=rule_sets(), deny=deny_documents())
def test_deny_always_wins(fleet, rules, deny):
    specs, ns_labels = fleet
    probes = probes_for(specs)
    before = make_lab(specs, ns_labels, rules).trace(probes)
    after = make_lab(specs, ns_labels, rules + [("policies/the-deny.yaml#0", deny)]).trace(probes)
    problems = []
    for p, b, a in zip(probes, before, after):
        if a["verdict"] == "allow" and b["verdict"] != "allow":
            problems.append("%s: deny -> allow after adding a deny (%s)" % (harness.describe(p), a["reason"]))
        if deny_matches(deny, specs, p) and a["verdict"] != "deny":
            problems.append("%s: matched by the deny but %s (%s)" % (harness.describe(p), a["verdict"], a["reason"]))
        if deny_matches(deny, specs, p) and a["l4"] != "deny":
            problems.append("%s: matched by the deny but l4 %s" % (harness.describe(p), a["l4"]))
    assert not problems, "\n".join(problems[:20])


BASELINE = ("policies/baseline.yaml#0", {
    "apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
    "metadata": {"name": "baseline-enforce"},
    "spec": {"endpointSelector": {}, "ingress": [{}], "egress": [{}]},
})


@SETTINGS
@given(fleet=fleets(), rules=rule_sets(), data=st.data())
def test_adding_an_allow_never_removes_access(fleet, rules, data):
    specs, ns_labels = fleet
    enforced = data.draw(st.booleans(), label="baseline enforces every endpoint")
    if enforced:
        rules = rules + [BASELINE]
        allow = data.draw(policy_document("the-allow", with_http=False, allow_deny=False), label="allow")
    else:
        allow = data.draw(policy_document("the-allow", with_http=False, allow_deny=False, default_deny=False,
                                          knp=False), label="allow")
    probes = probes_for(specs)
    before = make_lab(specs, ns_labels, rules).trace(probes)
    after = make_lab(specs, ns_labels, rules + [("policies/the-allow.yaml#0", allow)]).trace(probes)
    problems = ["%s: %s -> %s after adding an allow (%s)" % (harness.describe(p), verdict_key(b), verdict_key(a),
                                                             a["reason"])
                for p, b, a in zip(probes, before, after)
                if b["verdict"] == "allow" and a["verdict"] != "allow"]
    assert not problems, "\n".join(problems[:20])


def _shuffle_document(doc, seed):
    """The same document with every list and every mapping's key order shuffled
    (no list of a policy document is order-significant)."""
    rng = random.Random(seed)

    def walk(node):
        if isinstance(node, dict):
            keys = list(node)
            rng.shuffle(keys)
            return {k: walk(node[k]) for k in keys}
        if isinstance(node, list):
            items = [walk(v) for v in node]
            rng.shuffle(items)
            return items
        return node
    return walk(copy.deepcopy(doc))


def _result_view(result):
    return (result["verdict"], result["l4"], result["l7"], tuple(sorted(result.get("policies") or [])))


@SETTINGS
@given(fleet=fleets(), rules=rule_sets(), seed=st.integers(0, 2 ** 16))
def test_document_order_does_not_matter(fleet, rules, seed):
    specs, ns_labels = fleet
    probes = probes_for(specs)
    lab1 = make_lab(specs, ns_labels, rules)
    shuffled = harness.shuffled([(origin, _shuffle_document(doc, seed + i)) for i, (origin, doc) in enumerate(rules)],
                                seed)
    lab2 = make_lab(specs, ns_labels, shuffled)
    r1 = [_result_view(r) for r in lab1.trace(probes)]
    r2 = [_result_view(r) for r in lab2.trace(probes)]
    diff = ["%s: %s vs %s" % (harness.describe(p), a, b) for p, a, b in zip(probes, r1, r2) if a != b]
    assert not diff, "\n".join(diff[:20])
    for host in HOSTS:
        assert lab1.host_share(host) == lab2.host_share(host), "share of %s differs after shuffling" % host


@SETTINGS
@given(fleet=fleets(min_size=2, max_size=5), extra=st.lists(st.dictionaries(
    st.sampled_from(("app", "tier", "zone", "env")), st.sampled_from(("x1", "x2", "web", "prod")), min_size=1),
    min_size=1, max_size=4), rules=rule_sets(max_docs=2), drop=st.integers(0, 10))
def test_identities_do_not_move_when_unrelated_endpoints_come_and_go(fleet, extra, rules, drop):
    specs, ns_labels = fleet
    base = identities(make_lab(specs, ns_labels, rules))
    more = list(specs) + [{"name": "extra%d" % i, "namespace": "ns-c", "labels": labels,
                           "host": HOSTS[i % len(HOSTS)], "ports": None}
                          for i, labels in enumerate(extra)]
    grown = identities(make_lab(more, ns_labels, rules))
    for key, number in base.items():
        assert grown[key] == number, "identity of %s moved from %d to %d when endpoints were added" % (
            key, number, grown[key])
    # remove one original endpoint: the others keep their numbers
    fewer = [s for i, s in enumerate(specs) if i != drop % len(specs)]
    shrunk = identities(make_lab(fewer, ns_labels, rules))
    for key, number in shrunk.items():
        assert base[key] == number, "identity of %s moved from %d to %d when an endpoint was removed" % (
            key, base[key], number)
    # a twin (same namespace, same labels) shares the identity
    twin = dict(specs[0], name="twin", host=HOSTS[-1], ports=None)
    twins = identities(make_lab(list(specs) + [twin], ns_labels, rules))
    assert twins["%s/twin" % twin["namespace"]] == base["%s/%s" % (specs[0]["namespace"], specs[0]["name"])]
    # policies (and the CIDR identities they bring) do not move endpoint identities
    assert identities(make_lab(specs, ns_labels, [])) == base


@settings(max_examples=15, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets(), rules=rule_sets())
def test_trace_is_deterministic(fleet, rules):
    specs, ns_labels = fleet
    probes = probes_for(specs)
    first = make_lab(specs, ns_labels, rules)
    a = first.trace(probes)
    b = first.trace(probes)
    c = make_lab(specs, ns_labels, copy.deepcopy(rules)).trace(probes)
    assert a == b, "tracing twice on one computation differs"
    assert a == c, "tracing on a second computation of the same inputs differs"


# --- determinism across interpreter hash seeds -----------------------------------

_SNAPSHOT = r"""
import json, sys
sys.path[:0] = %(paths)r
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
_AnsibleCollectionFinder(paths=[%(collections)r])._install()
from tests.support import policy_harness as h
from tests.support import policy_fleets as t
specs, ns_labels, rules = json.loads(sys.stdin.read())
lab = t.make_lab(specs, ns_labels, [tuple(r) for r in rules])
out = {"trace": lab.trace(t.probes_for(specs)),
       "identities": t.identities(lab),
       "shares": {host: h.canonical(lab.host_share(host)) for host in t.HOSTS}}
print(json.dumps(out, sort_keys=True, default=repr))
"""

FIXED_SPECS = [
    {"name": "web", "namespace": "ns-a", "labels": {"app": "web", "env": "prod"}, "host": "node1",
     "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
    {"name": "db", "namespace": "ns-a", "labels": {"app": "db", "env": "prod"}, "host": "node2", "ports": None},
    {"name": "api", "namespace": "ns-b", "labels": {"app": "api"}, "host": "node3", "ports": None},
    {"name": "web2", "namespace": "ns-b", "labels": {"app": "web"}, "host": "node2", "ports": None},
]
FIXED_RULES = [
    ["policies/a.yaml#0", {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                           "metadata": {"name": "db", "namespace": "ns-a"},
                           "spec": {"endpointSelector": {"matchLabels": {"app": "db"}},
                                    "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "web"}}],
                                                 "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                                              "rules": {"http": [{"method": "GET",
                                                                                  "path": "/public"}]}}]}],
                                    "ingressDeny": [{"fromEntities": ["world"]}]}}],
    ["policies/b.yaml#0", {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
                           "metadata": {"name": "egress"},
                           "spec": {"endpointSelector": {"matchLabels": {"app": "web"}},
                                    "egress": [{"toCIDRSet": [{"cidr": "203.0.113.0/24",
                                                               "except": ["203.0.113.0/28"]}]},
                                               {"toEndpoints": [{}],
                                                "toPorts": [{"ports": [{"port": "http"},
                                                                       {"port": "80", "protocol": "TCP"}]}]}]}}],
    ["policies/c.yaml#0", {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                           "metadata": {"name": "api", "namespace": "ns-b"},
                           "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {
                               "matchLabels": {"team": "blue"}}}]}]}}],
]


def _snapshot(seed):
    root = ROOT
    code = _SNAPSHOT % {"paths": [root, os.path.join(root, "collections")],
                        "collections": os.path.join(root, "collections")}
    env = dict(os.environ, PYTHONHASHSEED=str(seed))
    ns_labels = {"ns-a": {"labels": {"team": "red"}}, "ns-b": {"labels": {"team": "blue"}}}
    proc = subprocess.run([sys.executable, "-c", code], check=False, input=json.dumps([FIXED_SPECS, ns_labels, FIXED_RULES]),
                          capture_output=True, text=True, env=env, cwd=root, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_results_do_not_depend_on_the_interpreter_hash_seed():
    one, two = _snapshot(1), _snapshot(4242)
    assert one["identities"] == two["identities"]
    assert one["trace"] == two["trace"]
    assert one["shares"] == two["shares"]
    # and the scenario is not vacuous
    verdicts = {r["verdict"] for r in one["trace"]}
    assert verdicts == {"allow", "deny"}
    assert any(r["l7"] == "deny" for r in one["trace"])
