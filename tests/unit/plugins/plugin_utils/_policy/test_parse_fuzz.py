"""Fuzzing the policy parser (hypothesis): whatever the documents hold --
random JSON-ish structures, valid documents with wrong types anywhere, None,
huge integers, unicode -- the outcome is a list of well-formed ir.Rules or an
ir.PolicyError whose message is one line naming the origin. Never another
exception. Equivalent documents (lists and keys reordered, documents
reordered) give the same IR."""

import copy
import re

from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir, parse
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy.parse_common import canon_key, one_line

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ORIGIN = "fuzz/policies.yaml#7"

FIELD_NAMES = [
    "apiVersion", "kind", "metadata", "name", "namespace", "spec", "specs", "status", "labels", "annotations",
    "endpointSelector", "nodeSelector", "ingress", "ingressDeny", "egress", "egressDeny", "enableDefaultDeny",
    "description", "fromEndpoints", "toEndpoints", "fromRequires", "toRequires", "fromCIDR", "toCIDR",
    "fromCIDRSet", "toCIDRSet", "cidr", "except", "fromEntities", "toEntities", "toPorts", "ports", "port",
    "endPort", "protocol", "rules", "http", "method", "path", "host", "headers", "headerMatches", "value",
    "mismatch", "icmps", "fields", "family", "type", "matchLabels", "matchExpressions", "key", "operator",
    "values", "podSelector", "namespaceSelector", "ipBlock", "policyTypes", "from", "to", "toFQDNs", "dns",
]
WORDS = [
    "", "TCP", "UDP", "SCTP", "ANY", "ICMP", "80", "0", "080", "65535", "65536", "http", "HTTP", "dns-tcp",
    "world", "cluster", "all", "In", "NotIn", "Exists", "DoesNotExist", "10.0.0.0/8", "10.0.0.1/8", "0.0.0.0/0",
    "::/0", "1.2.3.4", "k8s:app", "any:app", "reserved:host", "reserved:x", "app", "default", "Ingress",
    "Egress", "IPv4", "IPv6", "EchoRequest", "GET", "/x", "(", "(?=a)", "a\\1", "LOG", "cilium.io/v2",
    "networking.k8s.io/v1", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy", "NetworkPolicy",
    "\n", "\r\n", "\u2028", "\x85", "\x00", "é", "\U0001F600", "x" * 300,
]
KINDS = [("cilium.io/v2", "CiliumNetworkPolicy"), ("cilium.io/v2", "CiliumClusterwideNetworkPolicy"),
         ("networking.k8s.io/v1", "NetworkPolicy")]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2 ** 80), max_value=2 ** 80),
    st.floats(), st.text(max_size=12), st.sampled_from(WORDS),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.sampled_from(WORDS), st.text(max_size=8), st.integers(), st.none(), st.booleans())
json_ish = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
field_maps = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=5)),
    max_leaves=30,
)


# --- valid documents to mutate ------------------------------------------

def _cnp(spec, kind="CiliumNetworkPolicy", **meta):
    meta.setdefault("name", "p")
    return {"apiVersion": "cilium.io/v2", "kind": kind, "metadata": meta, "spec": spec}


VALID = [
    _cnp({"endpointSelector": {"matchLabels": {"org": "empire", "class": "deathstar"}},
          "ingress": [{"fromEndpoints": [{"matchLabels": {"org": "empire"}}],
                       "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                    "rules": {"http": [{"method": "POST", "path": "/v1/request-landing",
                                                        "headers": ["X-Ship: empire"],
                                                        "headerMatches": [{"name": "X-A", "value": "1", "mismatch": "LOG"}]}]}}]}]},
         namespace="default"),
    _cnp({"endpointSelector": {"matchExpressions": [{"key": "k8s:tier", "operator": "NotIn", "values": ["a", "b"]}]},
          "ingress": [{}, {"fromCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}]},
                      {"fromEntities": ["world", "cluster"]}, {"icmps": [{"fields": [{"type": 8}, {"type": "EchoReply", "family": "IPv4"}]}]}],
          "egress": [{"toCIDR": ["1.1.1.1"], "toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}, {"port": "1000", "endPort": 2000}]}]},
                     {"toEndpoints": [{}], "toRequires": [{"matchLabels": {"env": "prod"}}]}],
          "ingressDeny": [{"fromEntities": ["world"], "toPorts": [{"ports": [{"port": "22"}]}]}],
          "egressDeny": [{"toCIDR": ["192.0.2.0/24"]}],
          "enableDefaultDeny": {"ingress": True, "egress": False}, "labels": [{"key": "a", "value": "b"}], "description": "d"},
         name="q"),
    {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "s", "namespace": "x"},
     "specs": [{"endpointSelector": {}, "ingress": [{"fromEndpoints": [{"matchLabels": {"reserved:host": ""}}]}]},
               {"endpointSelector": {"matchLabels": {"app": "a"}}, "egress": [{"toEntities": ["all"]}]}]},
    _cnp({"endpointSelector": {}, "egress": [{"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system"}}]}]},
         kind="CiliumClusterwideNetworkPolicy"),
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n", "namespace": "y"},
     "spec": {"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Ingress", "Egress"],
              "ingress": [{"from": [{"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                                    {"namespaceSelector": {"matchLabels": {"project": "p"}}, "podSelector": {}},
                                    {"podSelector": {"matchExpressions": [{"key": "r", "operator": "Exists"}]}}],
                           "ports": [{"protocol": "TCP", "port": 6379}, {"port": "redis"}, {"port": 1, "endPort": 9}]}, {}],
              "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"protocol": "UDP"}]}]}},
]


def test_the_valid_pool_is_valid():
    rules = parse.parse_documents([("v#%d" % i, d) for i, d in enumerate(VALID)])
    assert len(rules) == 6
    for rule in rules:
        assert_well_formed(rule)


# --- checks ---------------------------------------------------------------

def outcome(docs):
    """Parse; return the rules, or None after checking the PolicyError."""
    try:
        rules = parse.parse_documents(docs)
    except ir.PolicyError as err:
        text = str(err)
        assert len(text.splitlines()) == 1, text
        assert any(text.startswith(one_line(o) + ": ") for o, dummy in docs), text
        assert isinstance(err.field, str) and err.field
        assert len(text) < 1000, text
        return None
    assert isinstance(rules, list)
    for rule in rules:
        assert_well_formed(rule)
    return rules


def _canonical(items):
    assert isinstance(items, tuple)
    assert list(items) == sorted(set(items), key=canon_key), items
    return items


def _selector(sel):
    assert isinstance(sel, ir.Selector)
    for req in _canonical(sel.requirements):
        assert isinstance(req, ir.Requirement)
        assert req.source in ("any", "k8s", "reserved")
        assert isinstance(req.key, str) and req.key
        assert req.op in ("In", "NotIn", "Exists", "DoesNotExist")
        assert all(isinstance(v, str) for v in _canonical(req.values))
        assert bool(req.values) == (req.op in ("In", "NotIn"))
    ir.selector_key(sel)


def assert_well_formed(rule):
    """The IR contract the engine relies on."""
    assert isinstance(rule, ir.Rule)
    hash(rule)
    assert rule.kind in ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy", "NetworkPolicy")
    assert isinstance(rule.name, str) and isinstance(rule.origin, str)
    assert isinstance(rule.enforce_ingress, bool) and isinstance(rule.enforce_egress, bool)
    _selector(rule.subject)
    for section in (rule.ingress, rule.egress, rule.ingress_deny, rule.egress_deny):
        for pr in _canonical(section):
            assert isinstance(pr, ir.PeerRule)
            if pr.peers is not None:
                for peer in _canonical(pr.peers):
                    if isinstance(peer, ir.PeerSelector):
                        _selector(peer.selector)
                    elif isinstance(peer, (ir.PeerCIDR, ir.PeerIPBlock)):
                        assert "/" in peer.prefix
                        _canonical(peer.excepts)
                    else:
                        assert isinstance(peer, ir.PeerEntity)
            for req in _canonical(pr.requires):
                _selector(req)
            assert pr.ports is None or pr.icmps is None
            if pr.ports is not None:
                for port in _canonical(pr.ports):
                    assert port.protocol in ("TCP", "UDP", "SCTP", "ANY")
                    if isinstance(port.port, str):
                        assert port.port and port.end_port is None
                    else:
                        assert 0 <= port.port <= 65535
                        assert port.end_port is None or port.port < port.end_port <= 65535
            if pr.icmps is not None:
                assert all(i.family == "IPv4" and 0 <= i.icmp_type <= 255 for i in _canonical(pr.icmps))
            if pr.http is not None:
                assert pr.ports and all(p.protocol == "TCP" and p.end_port is None and p.port != 0 for p in pr.ports)
                for rule_ in _canonical(pr.http):
                    _canonical(rule_.headers)
                    _canonical(rule_.header_matches)
    if rule.kind == "NetworkPolicy":
        assert rule.ingress_deny == () and rule.egress_deny == ()


# --- fuzz -------------------------------------------------------------------

@SETTINGS
@given(json_ish)
def test_random_values_as_documents(document):
    outcome([(ORIGIN, document)])


@SETTINGS
@given(st.sampled_from(KINDS), field_maps, json_ish, st.booleans())
def test_random_specs_under_a_valid_header(kind, spec, name, use_specs):
    doc = {"apiVersion": kind[0], "kind": kind[1], "metadata": {"name": name if isinstance(name, str) else "p"}}
    doc["specs" if use_specs and kind[1] != "NetworkPolicy" else "spec"] = [spec] if use_specs else spec
    outcome([(ORIGIN, doc)])


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _mutate(data, doc):
    doc = copy.deepcopy(doc)
    paths = list(_paths(doc))
    path = data.draw(st.sampled_from(paths))
    parent = None
    node = doc
    for step in path:
        parent, node = node, node[step]
    action = data.draw(st.sampled_from(["replace", "delete", "add-key", "wrap", "none", "empty", "dup"]))
    if action == "add-key" and isinstance(node, dict):
        node[data.draw(keys)] = data.draw(json_ish)
    elif action == "dup" and isinstance(node, list) and node:
        node.append(copy.deepcopy(node[0]))
    elif parent is None:
        return data.draw(json_ish)
    else:
        key = path[-1]
        if action == "delete":
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif action == "wrap":
            parent[key] = [node]
        elif action == "none":
            parent[key] = None
        elif action == "empty":
            parent[key] = type(node)() if isinstance(node, (dict, list, str)) else 0
        else:
            parent[key] = data.draw(json_ish)
    return doc


@SETTINGS
@given(st.data(), st.sampled_from(range(len(VALID))), st.integers(min_value=1, max_value=3))
def test_mutated_valid_documents(data, which, times):
    doc = VALID[which]
    for dummy in range(times):
        doc = _mutate(data, doc)
    outcome([(ORIGIN, doc)])


@SETTINGS
@given(st.lists(st.sampled_from(range(len(VALID))), min_size=1, max_size=6), st.text(max_size=10))
def test_many_documents_and_odd_origins(which, tag):
    docs = [("f%s.yaml#%d" % (tag, i), copy.deepcopy(VALID[w])) for i, w in enumerate(which)]
    rules = outcome(docs)
    if len(set(which)) < len(which):
        assert rules is None  # the same policy twice is a duplicate
    else:
        assert rules is not None


def _shuffle(value, rnd):
    if isinstance(value, dict):
        items = [(k, _shuffle(v, rnd)) for k, v in value.items()]
        rnd.shuffle(items)
        return dict(items)
    if isinstance(value, list):
        items = [_shuffle(v, rnd) for v in value]
        rnd.shuffle(items)
        return items
    return value


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_reordering_never_changes_the_ir(rnd):
    docs = [("v#%d" % i, d) for i, d in enumerate(VALID)]
    expected = parse.parse_documents(docs)
    shuffled = [(o, _shuffle(d, rnd)) for o, d in docs]
    rnd.shuffle(shuffled)
    got = parse.parse_documents(shuffled)
    # specs[i] origins follow the shuffled specs list: compare without them
    strip = [r._replace(origin=r.origin.split(".specs")[0]) for r in got]
    assert sorted(strip, key=canon_key) == sorted([r._replace(origin=r.origin.split(".specs")[0]) for r in expected], key=canon_key)
    assert [r for r in got if ".specs" not in r.origin] == [r for r in expected if ".specs" not in r.origin]


# --- targeted: one scalar slot of a valid document, filled at random ------

REGEX_ALPHABET = st.sampled_from(list("()[]{}?*+\\|^$.:=!<>#P0123456789aZ-,/ \n"))
regexish = st.text(alphabet=REGEX_ALPHABET, max_size=16)
slot_values = st.one_of(scalars, st.text(max_size=20), regexish, st.lists(scalars, max_size=3))


def _http_doc(**rule):
    return _cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                                                   "rules": {"http": [rule]}}]}]})


SLOTS = {
    "http-path": lambda v: _http_doc(path=v),
    "http-method": lambda v: _http_doc(method=v),
    "http-host": lambda v: _http_doc(host=v),
    "http-header": lambda v: _http_doc(headers=[v]),
    "header-match": lambda v: _http_doc(headerMatches=[{"name": v, "value": v, "mismatch": v}]),
    "port": lambda v: _cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": v}]}]}]}),
    "end-port": lambda v: _cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80", "endPort": v}]}]}]}),
    "protocol": lambda v: _cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80", "protocol": v}]}]}]}),
    "cidr": lambda v: _cnp({"endpointSelector": {}, "egress": [{"toCIDR": [v]}]}),
    "cidr-set": lambda v: _cnp({"endpointSelector": {}, "egress": [{"toCIDRSet": [{"cidr": "10.0.0.0/8", "except": [v]}]}]}),
    "entity": lambda v: _cnp({"endpointSelector": {}, "egress": [{"toEntities": [v]}]}),
    "label-key": lambda v: _cnp({"endpointSelector": {"matchLabels": {v: "x"}} if not isinstance(v, (list, dict)) else {}, "ingress": [{}]}),
    "label-value": lambda v: _cnp({"endpointSelector": {"matchLabels": {"a": v}}, "ingress": [{}]}),
    "expr-key": lambda v: _cnp({"endpointSelector": {"matchExpressions": [{"key": v, "operator": "Exists"}]}, "ingress": [{}]}),
    "expr-operator": lambda v: _cnp({"endpointSelector": {"matchExpressions": [{"key": "a", "operator": v, "values": ["b"]}]}, "ingress": [{}]}),
    "icmp-type": lambda v: _cnp({"endpointSelector": {}, "ingress": [{"icmps": [{"fields": [{"type": v}]}]}]}),
    "icmp-family": lambda v: _cnp({"endpointSelector": {}, "ingress": [{"icmps": [{"fields": [{"type": 8, "family": v}]}]}]}),
    "name": lambda v: _cnp({"endpointSelector": {}, "ingress": [{}]}, name=v),
    "namespace": lambda v: _cnp({"endpointSelector": {}, "ingress": [{}]}, namespace=v),
    "default-deny": lambda v: _cnp({"endpointSelector": {}, "ingress": [{}], "enableDefaultDeny": {"ingress": v}}),
    "knp-port": lambda v: {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "k"},
                           "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": v, "endPort": v}]}]}},
    "knp-ipblock": lambda v: {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "k"},
                              "spec": {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": v, "except": [v]}}]}]}},
    "knp-policy-types": lambda v: {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "k"},
                                   "spec": {"podSelector": {}, "policyTypes": v}},
}


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SLOTS)), slot_values)
def test_random_scalars_in_every_slot(slot, value):
    outcome([(ORIGIN, SLOTS[slot](value))])


@settings(max_examples=1000, deadline=None)
@given(regexish)
def test_accepted_http_regexes_compile_in_python(pattern):
    rules = outcome([(ORIGIN, _http_doc(path=pattern))])
    if rules:
        http = rules[0].ingress[0].http[0]
        assert http.path is None or re.compile(http.path)
