# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deterministic synthetic fleets for the benchmarks (P1) and the tests.

``generate(FleetSpec(...))`` returns host variables in the inventory schema
(docs/inventory.md), ``palisade_namespaces`` and a list of policy
documents written the way users write them for Cilium and Kubernetes. The
same spec (seed included) always gives the same fleet, byte for byte.

Shape of a fleet:

- Identities. ``identities`` distinct label sets, one per (app, variant):
  every app has up to four variants (version v1|v2 x track stable|canary)
  and lives in one namespace; labels are app, tier, version, track (plus
  ``exposure`` / ``pci`` on some apps). Each label set is carried by at
  least one endpoint, the rest are spread with a skew (big apps and small
  ones), so the fleet has exactly ``min(identities, endpoints)`` endpoint
  identities.
- Endpoints. ``hosts`` x ``endpoints_per_host``, shuffled over the hosts;
  each host has a pod_cidr and its endpoints' addresses lie inside it.
  Named ports follow the app's tier; a few endpoints put ``http`` on another
  number than the rest of their identity (the engine groups subjects by
  identity and named-port map).
- Policies. ``policies`` documents drawn from templates, weighted roughly
  55% CiliumNetworkPolicy, 10% CiliumClusterwideNetworkPolicy, 35%
  NetworkPolicy, covering matchLabels and matchExpressions selectors,
  namespace-scoped and cross-namespace peers, namespace-label selectors,
  KNP namespaceSelector/podSelector/ipBlock, ports, port ranges (endPort),
  named ports, TCP/UDP/SCTP/ANY, ICMP, CIDR rules with except, entities,
  ingressDeny/egressDeny, enableDefaultDeny, ``specs`` lists and L7 HTTP
  rules. The first documents use every template once, so any fleet with at
  least TEMPLATE_COUNT (21) policies has all of them. Every document is valid.

Command line (from the repository root): ``python -m tools.fleetgen
--endpoints 600 --summary`` prints what a spec gives; ``--write DIR`` writes
it as an Ansible inventory (hosts.yml, host_vars/, group_vars/all.yml,
policies/generated.yaml).
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import math
import os
import random
import sys
from collections import Counter

TIERS = ("web", "api", "worker", "db", "cache", "batch")
VARIANTS = (("v1", "stable"), ("v2", "stable"), ("v1", "canary"), ("v2", "canary"))
ENVS = ("prod", "staging", "dev")

# Named ports by tier: (name, port, protocol).
TIER_PORTS = {
    "web": (("http", 8080, "TCP"), ("metrics", 9090, "TCP")),
    "api": (("http", 8080, "TCP"), ("grpc", 50051, "TCP"), ("metrics", 9090, "TCP")),
    "worker": (("metrics", 9090, "TCP"),),
    "db": (("pg", 5432, "TCP"), ("metrics", 9187, "TCP")),
    "cache": (("redis", 6379, "TCP"), ("metrics", 9121, "TCP")),
    "batch": (),
}

HTTP_RULES = (
    [{"method": "GET", "path": "/api/v1/.*"}],
    [{"method": "GET", "path": "/healthz"}, {"method": "GET", "path": "/metrics"}],
    [{"method": "POST", "path": "/api/v[0-9]+/orders", "headers": ["X-Tenant: acme"]}],
    [{"method": "GET|HEAD", "path": "/static/.*"}, {"method": "PUT", "path": "/api/v1/items/[0-9]+"}],
    [{"path": "/v1/request-landing", "method": "POST", "host": "deathstar\\.example\\.com"}],
    [{"method": "GET", "path": "/private/.*", "headerMatches": [{"name": "X-Token", "value": "s3cr3t"}]}],
)

# Address plan: nodes in 172.16.0.0/12, endpoints in 10.0.0.0/8 (one
# aligned block per host), policy CIDRs outside both.
NODE_NET = ipaddress.IPv4Network("172.16.0.0/12")
POD_NET = ipaddress.IPv4Network("10.0.0.0/8")


@dataclasses.dataclass(frozen=True)
class FleetSpec:
    """What to generate. ``identities`` is the number of distinct endpoint
    label sets (capped by the number of endpoints)."""

    hosts: int = 1000
    endpoints_per_host: int = 60
    identities: int = 5000
    namespaces: int = 20
    policies: int = 1000
    seed: int = 1

    @property
    def endpoints(self):
        return self.hosts * self.endpoints_per_host


# The reference configuration of benchmark P1 and its proportions.
REFERENCE = FleetSpec()


def scaled(endpoints, seed=1, reference=REFERENCE):
    """A spec of about ``endpoints`` endpoints with the reference's proportions:
    endpoints per host, endpoints per identity, policies per identity and
    endpoints per namespace all stay as in the reference, with small floors
    (2 hosts, 10 identities, TEMPLATE_COUNT policies, 2 namespaces) so tiny
    fleets still have every kind of policy."""
    per_host = min(reference.endpoints_per_host, max(1, endpoints // 2))
    hosts = max(2, round(endpoints / per_host))
    total = hosts * per_host
    identities = max(10, round(total * reference.identities / reference.endpoints))
    policies = max(TEMPLATE_COUNT, round(identities * reference.policies / reference.identities))
    namespaces = max(2, round(total * reference.namespaces / reference.endpoints))
    return FleetSpec(hosts=hosts, endpoints_per_host=per_host, identities=min(identities, total),
                     namespaces=namespaces, policies=policies, seed=seed)


@dataclasses.dataclass
class Fleet:
    spec: FleetSpec
    hostvars: dict      # inventory hostname -> {palisade_node, palisade_endpoints}
    namespaces: dict    # palisade_namespaces
    documents: list     # policy documents (dicts), as in palisade_policies
    stats: dict

    def policy_sources(self):
        """(origin, document) pairs, as the parser takes them."""
        return [("palisade_policies[%d]" % i, doc) for i, doc in enumerate(self.documents)]


# --- identities, namespaces, endpoints -------------------------------------

def _namespaces(spec, rng):
    names = ["ns-%02d" % i for i in range(spec.namespaces)]
    teams = ["team-%s" % chr(ord("a") + i % 26) for i in range(max(1, spec.namespaces // 2))]
    result = {}
    for i, name in enumerate(names):
        labels = {"team": teams[i % len(teams)], "env": ENVS[i % len(ENVS)]}
        if rng.random() < 0.3:
            labels["tenant"] = "t-%d" % rng.randrange(5)
        result[name] = {"labels": labels}
    return result


def _apps(spec, namespaces, rng):
    """Apps with their namespace, tier, extra labels and named ports."""
    names = sorted(namespaces)
    count = math.ceil(spec.identities / len(VARIANTS))
    apps = []
    for a in range(count):
        tier = TIERS[rng.randrange(len(TIERS))]
        labels = {"app": "app-%04d" % a, "tier": tier}
        if tier == "web" and rng.random() < 0.5:
            labels["exposure"] = "public"
        if tier == "db" and rng.random() < 0.3:
            labels["pci"] = "true"
        ports = [{"name": n, "port": p, "protocol": proto} for n, p, proto in TIER_PORTS[tier]]
        if tier == "web" and rng.random() < 0.3:
            ports[0]["port"] = 80
        if tier == "api" and rng.random() < 0.1:
            ports.append({"name": "diameter", "port": 3868, "protocol": "SCTP"})
        if tier == "worker" and rng.random() < 0.2:
            ports.append({"name": "dns", "port": 53, "protocol": "UDP"})
        apps.append({"index": a, "name": labels["app"], "namespace": names[a % len(names)],
                     "tier": tier, "labels": labels, "ports": ports})
    return apps


def _label_sets(spec, apps):
    """Exactly spec.identities (namespace, labels, app) triples."""
    sets = []
    for i in range(spec.identities):
        app = apps[i // len(VARIANTS)]
        version, track = VARIANTS[i % len(VARIANTS)]
        labels = dict(app["labels"], version=version, track=track)
        sets.append((app["namespace"], labels, app))
    return sets


def _host_blocks(spec):
    """(node address, pod_cidr network) per host."""
    size = max(4, 1 << math.ceil(math.log2(spec.endpoints_per_host + 2)))
    prefixlen = 32 - int(math.log2(size))
    if spec.hosts > (1 << (prefixlen - POD_NET.prefixlen)) or spec.hosts > NODE_NET.num_addresses - 2:
        raise ValueError("%d hosts x %d endpoints do not fit the address plan" % (spec.hosts, spec.endpoints_per_host))
    blocks = POD_NET.subnets(new_prefix=prefixlen)
    return [(str(NODE_NET.network_address + 1 + h), next(blocks)) for h in range(spec.hosts)]


def _endpoints(spec, label_sets, rng):
    """One (namespace, labels, app) per endpoint: every label set once, the
    rest weighted by a Zipf-like popularity, then shuffled over the fleet."""
    total = spec.endpoints
    used = list(range(min(len(label_sets), total)))
    rng.shuffle(used)
    if total > len(used):
        weights = [1.0 / math.sqrt(1 + r) for r in range(len(label_sets))]
        order = list(range(len(label_sets)))
        rng.shuffle(order)
        used += rng.choices(order, weights=weights, k=total - len(used))
        rng.shuffle(used)
    return [label_sets[i] for i in used]


def _hostvars(spec, label_sets, rng):
    hostvars = {}
    assignment = _endpoints(spec, label_sets, rng)
    blocks = _host_blocks(spec)
    width = len(str(spec.hosts - 1))
    for h, (node_ip, block) in enumerate(blocks):
        host = "node-%0*d" % (width, h)
        endpoints = []
        for j in range(spec.endpoints_per_host):
            e = h * spec.endpoints_per_host + j
            namespace, labels, app = assignment[e]
            ports = [dict(p) for p in app["ports"]]
            if ports and ports[0]["name"] == "http" and rng.random() < 0.025:
                ports[0]["port"] = 8081  # same identity, another number behind "http"
            endpoint = {
                "name": "%s-%05d" % (app["name"], e),
                "namespace": namespace,
                "labels": dict(labels),
                "ipv4": str(block.network_address + 2 + j),
            }
            if ports:
                endpoint["ports"] = ports
            endpoints.append(endpoint)
        hostvars[host] = {
            "palisade_node": {"ipv4": node_ip, "pod_cidr": str(block)},
            "palisade_endpoints": endpoints,
        }
    return hostvars


# --- policies ------------------------------------------------------------

class _Policies:
    """Policy templates. Each returns one document; ``self.rng`` decides the
    details, so the sequence depends only on the spec."""

    # (weight, template method): about 55% CNP, 10% CCNP, 35% KNP.
    TEMPLATES = (
        (12, "cnp_l4"), (8, "cnp_http"), (6, "cnp_cross_namespace"), (8, "cnp_egress"), (6, "cnp_deny"),
        (4, "cnp_port_ranges"), (4, "cnp_entities"), (3, "cnp_specs"), (2, "cnp_namespace_wide"), (2, "cnp_icmp"),
        (3, "ccnp_deny_world"), (3, "ccnp_monitoring"), (4, "ccnp_namespace_labels"),
        (10, "knp_pod_and_namespace"), (6, "knp_and_selector"), (6, "knp_ipblock_egress"), (3, "knp_ipblock_ingress"),
        (4, "knp_protocols"), (3, "knp_all_namespaces"), (2, "knp_default_deny"), (1, "knp_allow_all"),
    )

    def __init__(self, spec, namespaces, apps, hostvars, rng):
        self.rng = rng
        self.namespaces = sorted(namespaces)
        self.ns_labels = {n: v["labels"] for n, v in namespaces.items()}
        self.apps = apps
        self.by_ns = {n: [a for a in apps if a["namespace"] == n] for n in self.namespaces}
        self.by_ns = {n: v for n, v in self.by_ns.items() if v}
        self.pod_cidrs = [hv["palisade_node"]["pod_cidr"] for hv in hostvars.values()]
        self.cidrs = self._cidr_pool(max(6, spec.policies // 10))
        self.templates = [(weight, getattr(self, name)) for weight, name in self.TEMPLATES]

    def _cidr_pool(self, count):
        """Outside prefixes (not endpoints, not nodes), some with excepts."""
        pool = []
        for i in range(count):
            shape = i % 4
            a, b = 20 + self.rng.randrange(200), self.rng.randrange(256)
            if a in (10, 127, 169, 172, 192, 198, 203, 224):
                a += 1
            if shape == 0:
                pool.append(("%d.%d.0.0/16" % (a, b), ["%d.%d.%d.0/24" % (a, b, self.rng.randrange(256))]))
            elif shape == 1:
                pool.append(("%d.%d.%d.0/24" % (a, b, self.rng.randrange(256)), []))
            elif shape == 2:
                c = self.rng.randrange(256)
                pool.append(("%d.%d.%d.0/24" % (a, b, c), ["%d.%d.%d.128/25" % (a, b, c), "%d.%d.%d.16/28" % (a, b, c)]))
            else:
                pool.append(("%d.%d.%d.%d/32" % (a, b, self.rng.randrange(256), 1 + self.rng.randrange(254)), []))
        return pool

    def documents(self, count):
        """``count`` documents: every template once (as far as ``count``
        allows), then templates drawn by weight."""
        weights = [w for w, dummy in self.templates]
        docs = []
        for i in range(count):
            if i < len(self.templates):
                template = self.templates[i][1]
            else:
                template = self.rng.choices(self.templates, weights=weights)[0][1]
            docs.append(template("p%04d" % i))
        return docs

    # helpers
    def _ns(self):
        return self.rng.choice(sorted(self.by_ns))

    def _app(self, namespace, tiers=None):
        apps = self.by_ns[namespace]
        if tiers:
            apps = [a for a in apps if a["tier"] in tiers] or apps
        return self.rng.choice(apps)

    def _port_names(self, app, protocol="TCP"):
        return [p["name"] for p in app["ports"] if p["protocol"] == protocol]

    def _cidr(self):
        return self.rng.choice(self.cidrs)

    @staticmethod
    def _cnp(kind, name, namespace, spec):
        meta = {"name": name}
        if namespace:
            meta["namespace"] = namespace
        api = "cilium.io/v2"
        return {"apiVersion": api, "kind": kind, "metadata": meta, **spec}

    def cnp(self, name, namespace, spec):
        return self._cnp("CiliumNetworkPolicy", name, namespace, {"spec": spec})

    def ccnp(self, name, spec):
        return self._cnp("CiliumClusterwideNetworkPolicy", name, None, {"spec": spec})

    @staticmethod
    def knp(name, namespace, spec):
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}

    def _subject(self, app):
        """CNP endpointSelector for an app: by app, or by app and variant."""
        if self.rng.random() < 0.25:
            return {"matchLabels": {"app": app["name"]},
                    "matchExpressions": [{"key": "track", "operator": "In", "values": ["stable"]}]}
        return {"matchLabels": {"app": app["name"]}}

    def _ports(self, app, count=2):
        """toPorts ports for an app: its named or numbered TCP ports."""
        ports = []
        for p in self.rng.sample(app["ports"], min(count, len(app["ports"]))) or [{"port": 8080, "protocol": "TCP", "name": None}]:
            if p.get("name") and self.rng.random() < 0.4:
                ports.append({"port": p["name"], "protocol": p["protocol"]})
            else:
                ports.append({"port": str(p["port"]), "protocol": p["protocol"]})
        return ports

    # --- CiliumNetworkPolicy
    def cnp_l4(self, name):
        ns = self._ns()
        app, peer = self._app(ns), self._app(ns)
        peers = [{"matchLabels": {"app": peer["name"]}}]
        if self.rng.random() < 0.5:
            peers.append({"matchExpressions": [
                {"key": "tier", "operator": "In", "values": sorted(self.rng.sample(TIERS, 2))},
                {"key": "track", "operator": "NotIn", "values": ["canary"]}]})
        if self.rng.random() < 0.2:
            peers.append({"matchExpressions": [{"key": "exposure", "operator": "DoesNotExist"},
                                               {"key": "version", "operator": "Exists"}]})
        return self.cnp(name + "-l4", ns, {
            "endpointSelector": self._subject(app),
            "ingress": [{"fromEndpoints": peers, "toPorts": [{"ports": self._ports(app)}]}],
        })

    def cnp_http(self, name):
        ns = self._ns()
        app = self._app(ns, ("web", "api"))
        peer = self._app(ns)
        port = "http" if self.rng.random() < 0.3 and "http" in self._port_names(app) else "8080"
        return self.cnp(name + "-http", ns, {
            "description": "L7: only these requests",
            "endpointSelector": {"matchLabels": {"app": app["name"]}},
            "ingress": [{
                "fromEndpoints": [{"matchLabels": {"app": peer["name"]}}, {"matchLabels": {"tier": "web"}}],
                "toPorts": [{"ports": [{"port": port, "protocol": "TCP"}],
                             "rules": {"http": self.rng.choice(HTTP_RULES)}}],
            }],
        })

    def cnp_cross_namespace(self, name):
        ns, other = self._ns(), self._ns()
        app, peer = self._app(ns), self._app(other)
        third = self._ns()
        return self.cnp(name + "-xns", ns, {
            "endpointSelector": self._subject(app),
            "ingress": [{
                "fromEndpoints": [
                    {"matchLabels": {"k8s:io.kubernetes.pod.namespace": other, "app": peer["name"]}},
                    {"matchExpressions": [
                        {"key": "k8s:io.kubernetes.pod.namespace", "operator": "In", "values": sorted({other, third})},
                        {"key": "tier", "operator": "In", "values": ["web", "api"]}]},
                ],
                "toPorts": [{"ports": self._ports(app, 1)}],
            }],
        })

    def cnp_egress(self, name):
        ns = self._ns()
        app, db = self._app(ns), self._app(ns, ("db", "cache"))
        cidr, excepts = self._cidr()
        cidr_set = {"cidr": cidr}
        if excepts:
            cidr_set["except"] = excepts
        egress = [
            {"toEndpoints": [{"matchLabels": {"app": db["name"]}}], "toPorts": [{"ports": self._ports(db, 1)}]},
            {"toCIDRSet": [cidr_set], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]},
            {"toEntities": ["kube-apiserver"], "toPorts": [{"ports": [{"port": "6443", "protocol": "TCP"}]}]},
        ]
        if self.rng.random() < 0.5:
            egress.append({"toCIDR": [self._cidr()[0]],
                           "toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}]}]})
        return self.cnp(name + "-egress", ns, {"endpointSelector": self._subject(app), "egress": egress})

    def cnp_deny(self, name):
        ns = self._ns()
        app = self._app(ns, ("db", "cache", "api"))
        spec = {"endpointSelector": {"matchLabels": {"tier": app["tier"]}}}
        choice = self.rng.randrange(3)
        if choice == 0:
            spec["ingressDeny"] = [{
                "fromEndpoints": [{"matchExpressions": [{"key": "track", "operator": "In", "values": ["canary"]}]}],
                "toPorts": [{"ports": self._ports(app, 1)}]}]
        elif choice == 1:
            spec["ingressDeny"] = [{"fromEntities": ["world"]}]
            spec["ingress"] = [{"fromEndpoints": [{"matchLabels": {"app": self._app(ns)["name"]}}]}]
        else:
            spec["egressDeny"] = [{"toCIDRSet": [{"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12"]}],
                                   "toPorts": [{"ports": [{"port": "25", "protocol": "TCP"}]}]}]
        return self.cnp(name + "-deny", ns, spec)

    def cnp_port_ranges(self, name):
        ns = self._ns()
        app, peer = self._app(ns), self._app(ns)
        start = self.rng.choice((8000, 9000, 10000, 30000))
        return self.cnp(name + "-range", ns, {
            "endpointSelector": {"matchLabels": {"app": app["name"]}},
            "ingress": [{
                "fromEndpoints": [{"matchLabels": {"app": peer["name"]}}],
                "toPorts": [{"ports": [{"port": str(start), "endPort": start + self.rng.choice((99, 1023, 2767)), "protocol": "TCP"},
                                       {"port": "5000", "endPort": 5010}]}],
            }],
        })

    def cnp_entities(self, name):
        ns = self._ns()
        app = self._app(ns)
        return self.cnp(name + "-entities", ns, {
            "endpointSelector": self._subject(app),
            "ingress": [{"fromEntities": ["host", "remote-node", "health"],
                         "toPorts": [{"ports": [{"port": "9090", "protocol": "TCP"}]}]}],
            "egress": [{"toEntities": ["world"],
                        "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}, {"port": "80", "protocol": "TCP"}]}]},
                       {"toEntities": ["cluster"], "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}]}]}],
        })

    def cnp_specs(self, name):
        ns = self._ns()
        app, peer, dst = self._app(ns), self._app(ns), self._app(ns)
        return self._cnp("CiliumNetworkPolicy", name + "-specs", ns, {"specs": [
            {"endpointSelector": {"matchLabels": {"app": app["name"]}},
             "ingress": [{"fromEndpoints": [{"matchLabels": {"app": peer["name"]}}], "toPorts": [{"ports": self._ports(app)}]}]},
            {"endpointSelector": {"matchLabels": {"app": app["name"]}},
             "egress": [{"toEndpoints": [{"matchLabels": {"app": dst["name"]}}]}]},
        ]})

    def cnp_namespace_wide(self, name):
        ns = self._ns()
        spec = {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]}
        if self.rng.random() < 0.5:
            spec["enableDefaultDeny"] = {"ingress": False}
        return self.cnp(name + "-ns-wide", ns, spec)

    def cnp_icmp(self, name):
        ns = self._ns()
        app = self._app(ns)
        return self.cnp(name + "-icmp", ns, {
            "endpointSelector": {"matchLabels": {"app": app["name"]}},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"tier": self.rng.choice(TIERS)}}],
                         "icmps": [{"fields": [{"type": 8, "family": "IPv4"}]}]}],
        })

    # --- CiliumClusterwideNetworkPolicy
    def ccnp_deny_world(self, name):
        tier = self.rng.choice(("db", "cache"))
        return self.ccnp(name + "-no-world", {
            "endpointSelector": {"matchLabels": {"tier": tier}},
            "ingressDeny": [{"fromEntities": ["world"]}],
            "egressDeny": [{"toCIDRSet": [{"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12"]}]}],
        })

    def ccnp_monitoring(self, name):
        ns = self._ns()
        prom = self._app(ns, ("worker",))
        subject = {} if self.rng.random() < 0.3 else {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}
        return self.ccnp(name + "-monitoring", {
            "endpointSelector": subject,
            "ingress": [{
                "fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": ns, "app": prom["name"]}}],
                "toPorts": [{"ports": [{"port": "metrics", "protocol": "TCP"}, {"port": "9100", "protocol": "TCP"}]}],
            }],
            "enableDefaultDeny": {"ingress": False},
        })

    def ccnp_namespace_labels(self, name):
        ns, other = self._ns(), self._ns()
        return self.ccnp(name + "-ns-labels", {
            "endpointSelector": {"matchLabels": {"io.cilium.k8s.namespace.labels.env": self.ns_labels[ns]["env"],
                                                 "tier": "api"}},
            "ingress": [{
                "fromEndpoints": [{"matchLabels": {"io.cilium.k8s.namespace.labels.team": self.ns_labels[other]["team"]}}],
                "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}, {"port": "grpc", "protocol": "TCP"}]}],
            }],
        })

    # --- NetworkPolicy
    def knp_pod_and_namespace(self, name):
        ns, other = self._ns(), self._ns()
        app, peer = self._app(ns), self._app(ns)
        ports = [{"protocol": "TCP", "port": 8080}]
        if "metrics" in self._port_names(app):
            ports.append({"protocol": "TCP", "port": "metrics"})
        return self.knp(name + "-knp", ns, {
            "podSelector": {"matchLabels": {"app": app["name"]}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": peer["name"]}}},
                                  {"namespaceSelector": {"matchLabels": {"team": self.ns_labels[other]["team"]}}}],
                         "ports": ports}],
        })

    def knp_and_selector(self, name):
        ns = self._ns()
        app = self._app(ns, ("web", "api"))
        return self.knp(name + "-knp-and", ns, {
            "podSelector": {"matchLabels": {"app": app["name"]},
                            "matchExpressions": [{"key": "version", "operator": "In", "values": ["v1", "v2"]}]},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"env": self.rng.choice(ENVS)}},
                                   "podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}}],
                         "ports": [{"protocol": "TCP", "port": "http"}]}],
        })

    def knp_ipblock_egress(self, name):
        ns = self._ns()
        app = self._app(ns)
        cidr, excepts = self._cidr()
        internal = {"cidr": "10.0.0.0/8", "except": [self.rng.choice(self.pod_cidrs)]}
        outside = {"cidr": cidr}
        if excepts:
            outside["except"] = excepts
        return self.knp(name + "-knp-egress", ns, {
            "podSelector": {"matchLabels": {"app": app["name"]}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": internal}, {"ipBlock": outside}],
                        "ports": [{"protocol": "TCP", "port": 32000, "endPort": 32767}, {"protocol": "UDP", "port": 53}]}],
        })

    def knp_ipblock_ingress(self, name):
        ns = self._ns()
        app = self._app(ns, ("web",))
        cidr, excepts = self._cidr()
        block = {"cidr": cidr}
        if excepts:
            block["except"] = excepts
        return self.knp(name + "-knp-ipblock", ns, {
            "podSelector": {"matchLabels": {"tier": app["tier"], "exposure": "public"}},
            "ingress": [{"from": [{"ipBlock": block}], "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 80}]}],
        })

    def knp_protocols(self, name):
        ns = self._ns()
        app = self._app(ns, ("api", "worker"))
        return self.knp(name + "-knp-proto", ns, {
            "podSelector": {"matchLabels": {"app": app["name"]}},
            "ingress": [{"from": [{"podSelector": {}}],
                         "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "SCTP", "port": 3868}, {"protocol": "TCP"}]}],
        })

    def knp_all_namespaces(self, name):
        ns = self._ns()
        app = self._app(ns)
        return self.knp(name + "-knp-all-ns", ns, {
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": [app["name"]]},
                                                 {"key": "track", "operator": "NotIn", "values": ["canary"]}]},
            "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 9090}]}],
        })

    def knp_default_deny(self, name):
        return self.knp(name + "-knp-default-deny", self._ns(), {"podSelector": {}, "policyTypes": ["Ingress"]})

    def knp_allow_all(self, name):
        ns = self._ns()
        return self.knp(name + "-knp-allow-all", ns, {
            "podSelector": {"matchLabels": {"tier": self._app(ns)["tier"]}}, "ingress": [{}]})


TEMPLATE_COUNT = len(_Policies.TEMPLATES)


# --- entry points --------------------------------------------------------

def generate(spec=REFERENCE):
    """The fleet for ``spec``: deterministic in everything, seed included."""
    if spec.identities < 1 or spec.hosts < 1 or spec.endpoints_per_host < 1 or spec.namespaces < 1:
        raise ValueError("spec needs at least one host, endpoint, identity and namespace: %r" % (spec,))
    rng = random.Random(spec.seed)
    namespaces = _namespaces(spec, rng)
    apps = _apps(spec, namespaces, rng)
    label_sets = _label_sets(spec, apps)
    hostvars = _hostvars(spec, label_sets, rng)
    documents = _Policies(spec, namespaces, apps, hostvars, rng).documents(spec.policies)
    identities = {(ep["namespace"], tuple(sorted(ep["labels"].items())))
                  for hv in hostvars.values() for ep in hv["palisade_endpoints"]}
    stats = {
        "hosts": spec.hosts,
        "endpoints": spec.endpoints,
        "identities": len(identities),
        "namespaces": len(namespaces),
        "policies": len(documents),
        "policy_kinds": dict(sorted(Counter(d["kind"] for d in documents).items())),
        "policy_templates": dict(sorted(Counter(d["metadata"]["name"].split("-", 1)[1] for d in documents).items())),
    }
    return Fleet(spec=spec, hostvars=hostvars, namespaces=namespaces, documents=documents, stats=stats)


def change_one_endpoint(hostvars, how="new-identity"):
    """Change one endpoint's labels in place (the middle host's middle
    endpoint) and return a description of the change.

    ``new-identity``: give it a version no other endpoint has (a new identity
    appears; its old one keeps its other endpoints, if any).
    ``existing-identity``: move it to its app's other track, an identity that
    already exists when its app has both tracks.
    """
    hosts = sorted(hostvars)
    host = hosts[len(hosts) // 2]
    endpoints = hostvars[host]["palisade_endpoints"]
    endpoint = endpoints[len(endpoints) // 2]
    before = dict(endpoint["labels"])
    if how == "new-identity":
        endpoint["labels"] = dict(before, version="v9-hotfix")
    elif how == "existing-identity":
        endpoint["labels"] = dict(before, track="canary" if before.get("track") == "stable" else "stable")
    else:
        raise ValueError("unknown change %r" % how)
    return {"host": host, "endpoint": "%s/%s" % (endpoint["namespace"], endpoint["name"]),
            "how": how, "labels_before": before, "labels_after": dict(endpoint["labels"])}


def write_inventory(fleet, directory):
    """Write ``fleet`` as an Ansible inventory directory."""
    # Only this entry point needs PyYAML.
    import yaml  # pylint: disable=import-outside-toplevel

    os.makedirs(os.path.join(directory, "host_vars"), exist_ok=True)
    os.makedirs(os.path.join(directory, "group_vars"), exist_ok=True)
    os.makedirs(os.path.join(directory, "policies"), exist_ok=True)
    dump = {"default_flow_style": False, "sort_keys": False, "explicit_start": True}
    with open(os.path.join(directory, "hosts.yml"), "w", encoding="utf-8") as f:
        yaml.safe_dump({"all": {"children": {"palisade_nodes": {"hosts": {h: None for h in fleet.hostvars}}}}}, f, **dump)
    for host, hv in fleet.hostvars.items():
        with open(os.path.join(directory, "host_vars", host + ".yml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(hv, f, **dump)
    with open(os.path.join(directory, "group_vars", "all.yml"), "w", encoding="utf-8") as f:
        yaml.safe_dump({"palisade_namespaces": fleet.namespaces, "palisade_policies": [],
                        "palisade_policy_files": ["{{ inventory_dir }}/policies/*.yaml"]}, f, **dump)
    with open(os.path.join(directory, "policies", "generated.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump_all(fleet.documents, f, **dump)


def write_fleet_file(fleet, directory):
    """Write ``fleet`` as an inventory for the palisade.ebpf.fleet plugin:
    one JSON file (fleet.fleet.json) and the policies beside it."""
    import yaml  # pylint: disable=import-outside-toplevel

    os.makedirs(os.path.join(directory, "policies"), exist_ok=True)
    data = {"plugin": "palisade.ebpf.fleet",
            "vars": {"palisade_namespaces": fleet.namespaces, "palisade_policy_files": ["policies/*.yaml"]},
            "groups": {"palisade_nodes": list(fleet.hostvars)},
            "hosts": fleet.hostvars}
    with open(os.path.join(directory, "fleet.fleet.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
    with open(os.path.join(directory, "policies", "generated.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump_all(fleet.documents, f, default_flow_style=False, sort_keys=False, explicit_start=True)


def _parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--endpoints", type=int, help="scale the reference proportions to about this many endpoints")
    p.add_argument("--hosts", type=int)
    p.add_argument("--endpoints-per-host", type=int)
    p.add_argument("--identities", type=int)
    p.add_argument("--namespaces", type=int)
    p.add_argument("--policies", type=int)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--summary", action="store_true", help="print the fleet's statistics as JSON")
    p.add_argument("--write", metavar="DIR", help="write the fleet as an Ansible inventory directory")
    p.add_argument("--write-fleet-file", metavar="DIR",
                   help="write the fleet as one fleet file (palisade.ebpf.fleet inventory plugin) and its policies")
    return p.parse_args(argv)


def main(argv=None):
    args = _parse_args(argv)
    spec = scaled(args.endpoints, seed=args.seed) if args.endpoints else dataclasses.replace(REFERENCE, seed=args.seed)
    overrides = {k: getattr(args, k) for k in ("hosts", "endpoints_per_host", "identities", "namespaces", "policies")
                 if getattr(args, k) is not None}
    spec = dataclasses.replace(spec, **overrides)
    fleet = generate(spec)
    if args.write:
        write_inventory(fleet, args.write)
    if args.write_fleet_file:
        write_fleet_file(fleet, args.write_fleet_file)
    if args.summary or not (args.write or args.write_fleet_file):
        json.dump({"spec": dataclasses.asdict(spec), "stats": fleet.stats}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
