# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Builders for policy IR objects and small fleets, for the engine's unit
tests: they build ir.Rules directly (kind semantics already applied, as the
parser would), so that engine tests do not depend on the parser."""

from __future__ import annotations

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _model as model
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir

NS = ir.LABEL_NAMESPACE


def req(key, op="In", *values, source="any"):
    return ir.Requirement(source, key, op, tuple(sorted(values)))


def sel(*requirements, **labels):
    """A selector: requirements plus matchLabels-style ``key=value`` (any source)."""
    reqs = list(requirements) + [req(k, "In", v) for k, v in labels.items()]
    return ir.Selector(tuple(sorted(reqs)))


def in_ns(namespace, *requirements, **labels):
    """A CNP-style selector scoped to ``namespace``."""
    return sel(req(NS, "In", namespace, source="k8s"), *requirements, **labels)


def peers(*items):
    """PeerSelector for selectors, PeerEntity for strings, others as given."""
    out = []
    for item in items:
        if isinstance(item, ir.Selector):
            out.append(ir.PeerSelector(item))
        elif isinstance(item, str):
            out.append(ir.PeerEntity(item))
        else:
            out.append(item)
    return tuple(out)


def port(number, protocol="TCP", end=None):
    return ir.PortSpec(protocol, number, end)


def peer_rule(*peer_items, ports=None, icmps=None, http=None, requires=(), wildcard=False):
    """One PeerRule; ``wildcard`` gives peers None (every peer)."""
    return ir.PeerRule(None if wildcard else peers(*peer_items), tuple(requires),
                       None if ports is None else tuple(ports), None if icmps is None else tuple(icmps),
                       None if http is None else tuple(http))


def http_rule(method=None, path=None, host=None, headers=(), header_matches=()):
    return ir.HTTPRule(method, path, host, tuple(sorted(headers)), tuple(header_matches))


def rule(name, subject, ingress=(), egress=(), ingress_deny=(), egress_deny=(), enforce_ingress=None,
         enforce_egress=None, kind="CiliumNetworkPolicy"):
    """A Rule; enforcement defaults to CNP's (rules or deny rules in that direction)."""
    if enforce_ingress is None:
        enforce_ingress = bool(ingress or ingress_deny)
    if enforce_egress is None:
        enforce_egress = bool(egress or egress_deny)
    return ir.Rule(name, kind, "test:" + name, subject, tuple(ingress), tuple(egress), tuple(ingress_deny),
                   tuple(egress_deny), enforce_ingress, enforce_egress)


def endpoint(key, ipv4, labels=None, ports=None):
    namespace, dummy, name = key.rpartition("/")
    record = {"name": name, "namespace": namespace or "default", "ipv4": ipv4, "labels": dict(labels or {})}
    if ports:
        record["ports"] = [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]
    return record


def fleet(hosts, namespaces=None):
    """A validated fleet: ``hosts`` maps host -> (node address, [endpoints])."""
    hostvars = {host: {"palisade_node": {"ipv4": address}, "palisade_endpoints": list(endpoints)}
                for host, (address, endpoints) in hosts.items()}
    return model.load_fleet(hostvars, namespaces)


def starwars():
    """The demo: two deathstars (named port http), a tiefighter, an xwing."""
    return fleet({
        "node1": ("192.0.2.11", [endpoint("default/deathstar-1", "10.1.1.10", {"org": "empire", "class": "deathstar"},
                                          [("http", 80, "TCP")]),
                                 endpoint("default/tiefighter", "10.1.1.20", {"org": "empire", "class": "tiefighter"})]),
        "node2": ("192.0.2.12", [endpoint("default/deathstar-2", "10.1.2.10", {"org": "empire", "class": "deathstar"},
                                          [("http", 80, "TCP")])]),
        "node3": ("192.0.2.13", [endpoint("default/xwing", "10.1.3.10", {"org": "alliance", "class": "xwing"})]),
    })


def landing_rule():
    """Cilium's Star Wars L7 rule: empire may POST /v1/request-landing to deathstars."""
    return rule("default/rule1", in_ns("default", org="empire", **{"class": "deathstar"}),
                ingress=[peer_rule(in_ns("default", org="empire"), ports=[port(80)],
                                   http=[http_rule("POST", "/v1/request-landing")])])
