# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet model: the inventory schema (docs/inventory.md), validated.

``load_fleet`` turns raw host variables into plain, checked records, or raises
``InventoryError`` naming the host, the endpoint and the field. It is pure:
no I/O, no Ansible imports, so the controller runs it once per play and unit
tests run it without a kernel.

With a ``ModelCache`` (kept between runs by policy/persist.py) only hosts
whose raw variables changed are validated again; the fleet-wide checks then
look only for conflicts involving those hosts, and fall back to the full
check (and its exact error) when they find one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import hashlib
import ipaddress
import pickle
import re

from ansible_collections.palisade.ebpf.plugins.module_utils import _naming as naming
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _k8s_names as k8s

NODE_KEYS = ("ipv4", "pod_cidr")
ENDPOINT_KEYS = ("name", "namespace", "labels", "ipv4", "ports", "netns", "interface")
PORT_KEYS = ("name", "port", "protocol")
NAMESPACE_KEYS = ("labels",)
PROTOCOLS = ("TCP", "UDP", "SCTP")

# Interface names: no '/', no whitespace, no ':' (alias syntax), not '.' or '..'.
_IFNAME = re.compile(r"^[A-Za-z0-9_.@+=-]+$")
_NETNS = re.compile(r"^[A-Za-z0-9_.-]+$")


class InventoryError(ValueError):
    """Bad inventory data. The message names host, endpoint and field."""


def _where(host, endpoint=None, index=None):
    text = "inventory host '%s'" % host
    if index is not None:
        text += ": palisade_endpoints[%d]" % index
        if endpoint:
            text += " (%s)" % endpoint
    return text


def _fail(where, field, message):
    raise InventoryError("%s: %s: %s" % (where, field, message))


def _check_keys(where, field, value, allowed):
    if not isinstance(value, dict):
        _fail(where, field, "must be a mapping, got %s" % type(value).__name__)
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        _fail(where, field, "unknown key(s) %s; allowed: %s" % (", ".join(unknown), ", ".join(allowed)))


_DOTTED_QUAD = re.compile(r"(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})")


def _ipv4_int(where, field, value):
    """An IPv4 address as an int. Same acceptance as ipaddress (dotted quad,
    no leading zeros), several times faster: it runs once per endpoint."""
    if not isinstance(value, str):
        _fail(where, field, "must be an IPv4 address string, got %r" % (value,))
    match = _DOTTED_QUAD.fullmatch(value)
    octets = [int(part) for part in match.groups()] if match else None
    if octets is None or max(octets) > 255:
        _fail(where, field, "%r is not an IPv4 address" % (value,))
    return (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]


def _ipv4(where, field, value):
    return ipaddress.IPv4Address(_ipv4_int(where, field, value))


def _ipv4_network(where, field, value):
    if not isinstance(value, str) or "/" not in value:
        _fail(where, field, "must be an IPv4 CIDR like 10.1.1.0/24, got %r" % (value,))
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as exc:
        _fail(where, field, "%r is not a valid IPv4 CIDR (%s)" % (value, exc))


_VALID_LABELS = set()  # (key, value) pairs already validated: label sets repeat across a fleet


def _labels(where, field, value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(where, field, "must be a mapping of label keys to values")
    labels = {}
    for key, val in value.items():
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            val = str(val)
        try:
            known = (key, val) in _VALID_LABELS
        except TypeError:  # unhashable value; validation below explains it
            known = False
        if not known:
            error = k8s.label_key_error(key) or k8s.label_value_error(val)
            if error:
                _fail(where, "%s.%s" % (field, key), error)
            _VALID_LABELS.add((key, val))
        labels[key] = val
    return labels


def _ports(where, value):
    if value is None:
        return []
    if not isinstance(value, list):
        _fail(where, "ports", "must be a list")
    ports, names, seen = [], set(), set()
    for i, raw in enumerate(value):
        field = "ports[%d]" % i
        _check_keys(where, field, raw, PORT_KEYS)
        port = raw.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            _fail(where, field + ".port", "must be an integer from 1 to 65535, got %r" % (port,))
        protocol = raw.get("protocol", "TCP")
        if protocol not in PROTOCOLS:
            _fail(where, field + ".protocol", "must be one of %s, got %r" % ("|".join(PROTOCOLS), protocol))
        name = raw.get("name")
        if name is not None:
            if not k8s.is_service_name(name, lower_case=True):
                _fail(where, field + ".name", "%r is not a valid port name (%s)" % (name, k8s.PORT_NAME_RULE))
            if name in names:
                _fail(where, field + ".name", "duplicate port name %r" % name)
            names.add(name)
        if (port, protocol) in seen:
            _fail(where, field, "port %d/%s is declared twice" % (port, protocol))
        seen.add((port, protocol))
        ports.append({"name": name, "port": port, "protocol": protocol})
    return ports


def _endpoint(host, index, raw, node, pod_range):
    where = _where(host, index=index)
    if not isinstance(raw, dict):
        _fail(where, "palisade_endpoints[%d]" % index, "must be a mapping")
    name = raw.get("name")
    if not k8s.is_dns_subdomain(name):
        _fail(where, "name", "is required and must be a DNS-1123 name (lowercase alphanumerics, '-', '.'), got %r" % (name,))
    namespace = raw.get("namespace", "default") or "default"
    where = _where(host, naming.endpoint_key(raw), index)
    _check_keys(where, "endpoint", raw, ENDPOINT_KEYS)
    if not k8s.is_dns_label(namespace):
        _fail(where, "namespace", "%r is not a valid namespace name (DNS-1123 label)" % (namespace,))
    if "ipv4" not in raw:
        _fail(where, "ipv4", "is required")
    address = _ipv4_int(where, "ipv4", raw["ipv4"])
    first_octet = address >> 24
    if first_octet in (0, 127) or first_octet >= 224 or (address >> 16) == 0xA9FE:
        _fail(where, "ipv4", "%s cannot be an endpoint address (unspecified, loopback, link-local or multicast)" % raw["ipv4"])
    if pod_range and not pod_range[0] <= address <= pod_range[1]:
        _fail(where, "ipv4", "%s lies outside the host's pod_cidr %s" % (raw["ipv4"], node["pod_cidr"]))
    interface = raw.get("interface")
    if interface is not None:
        if not isinstance(interface, str) or not interface or len(interface) > naming.IFNAME_MAX \
                or not _IFNAME.fullmatch(interface) or interface in (".", ".."):
            _fail(where, "interface", "%r is not a valid interface name (at most %d characters, no '/', ':' or spaces)"
                  % (interface, naming.IFNAME_MAX))
    netns = raw.get("netns")
    if netns is not None and (not isinstance(netns, str) or not _NETNS.fullmatch(netns) or netns in (".", "..")):
        _fail(where, "netns", "%r is not a valid network namespace name" % (netns,))
    endpoint = {
        "name": name,
        "namespace": namespace,
        "labels": _labels(where, "labels", raw.get("labels")),
        "ipv4": raw["ipv4"],
        "ports": _ports(where, raw.get("ports")),
        "netns": netns,
        "interface": interface,
        "host": host,
    }
    return endpoint


def _node(host, raw):
    where = _where(host)
    _check_keys(where, "palisade_node", raw, NODE_KEYS)
    if "ipv4" not in raw:
        _fail(where, "palisade_node.ipv4", "is required")
    address = _ipv4(where, "palisade_node.ipv4", raw["ipv4"])
    pod_cidr = None
    if raw.get("pod_cidr") is not None:
        pod_cidr = str(_ipv4_network(where, "palisade_node.pod_cidr", raw["pod_cidr"]))
    return {"name": host, "ipv4": str(address), "pod_cidr": pod_cidr}


def _namespaces(raw):
    namespaces = {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InventoryError("palisade_namespaces: must be a mapping of namespace name to {labels: {...}}")
    for name, spec in raw.items():
        where = "palisade_namespaces.%s" % name
        if not k8s.is_dns_label(name):
            raise InventoryError("%s: %r is not a valid namespace name (DNS-1123 label)" % (where, name))
        spec = spec or {}
        if not isinstance(spec, dict):
            raise InventoryError("%s: must be a mapping with 'labels'" % where)
        unknown = sorted(str(k) for k in spec if k not in NAMESPACE_KEYS)
        if unknown:
            raise InventoryError("%s: unknown key(s) %s; allowed: labels" % (where, ", ".join(unknown)))
        labels = _labels(where, "labels", spec.get("labels"))
        labels["kubernetes.io/metadata.name"] = name  # as the API server adds it
        namespaces[name] = {"name": name, "labels": labels}
    return namespaces


class ModelCache:
    """Validated node records of the last fleet that passed ``load_fleet``,
    keyed by a digest of each host's raw variables: an unchanged host is
    valid without validating it again. ``hosts`` is replaced only by a
    successful load, so it always describes one whole, consistent fleet
    (which the incremental fleet-wide check relies on)."""

    def __init__(self, hosts=None):
        self.hosts = hosts or {}   # host -> (raw digest, node record)
        self.changed = False       # the last load changed ``hosts`` (so it needs saving)
        self.revalidated = []      # hosts the last load validated (for tests and stats)


def host_digest(host, raw_node, raw_eps):
    """A digest of what validating a host reads; None when the data cannot
    be digested (the host is then simply validated)."""
    try:
        data = pickle.dumps((host, raw_node, raw_eps), protocol=4)
    except Exception:  # pylint: disable=broad-except  # odd objects in hostvars: validate instead
        return None
    return hashlib.sha1(data).digest()


def load_fleet(raw_hosts, namespaces=None, cache=None):
    """Validate the inventory and return the fleet model.

    ``raw_hosts`` maps inventory hostname -> that host's variables (only
    ``palisade_node`` and ``palisade_endpoints`` are read; _inventory.py
    reads them from Ansible). Hosts without
    ``palisade_node`` are not palisade nodes and must declare no endpoints.
    ``cache``: a ModelCache, or None. The records it returns are shared with
    the cache: do not modify them.
    """
    previous = cache.hosts if cache is not None else {}
    nodes, digests, fresh = {}, {}, []
    for host in sorted(raw_hosts):
        hv = raw_hosts[host]
        raw_node = hv.get("palisade_node")
        raw_eps = hv.get("palisade_endpoints")
        if raw_node is None:
            if raw_eps:
                _fail(_where(host), "palisade_node", "is required on a host that declares palisade_endpoints")
            continue
        digest = digests[host] = host_digest(host, raw_node, raw_eps) if cache is not None else None
        known = previous.get(host)
        if digest is not None and known is not None and known[0] == digest:
            nodes[host] = known[1]
        else:
            nodes[host] = _host(host, raw_node, raw_eps)
            fresh.append(host)

    if cache is None or len(fresh) == len(nodes) or _conflicts(nodes, fresh, previous):
        _check_fleet(nodes)
    ns = _namespaces(namespaces)
    for node in nodes.values():
        for ep in node["endpoints"]:
            if ep["namespace"] not in ns:
                ns[ep["namespace"]] = {"name": ep["namespace"],
                                       "labels": {"kubernetes.io/metadata.name": ep["namespace"]}}
    if cache is not None:
        _remember(cache, nodes, digests, fresh)
    return {"nodes": nodes, "namespaces": ns}


def _host(host, raw_node, raw_eps):
    """One host's validated node record, its endpoints included."""
    node = _node(host, raw_node)
    if raw_eps is None:
        raw_eps = []
    if not isinstance(raw_eps, list):
        _fail(_where(host), "palisade_endpoints", "must be a list")
    pod_range = _pod_range(node["pod_cidr"]) if node["pod_cidr"] else None
    node["endpoints"] = [_endpoint(host, i, raw, node, pod_range) for i, raw in enumerate(raw_eps)]
    return node


def _pod_range(pod_cidr):
    """(first, last) address of a normalized CIDR as ints; cheap, since the
    incremental check takes every host's."""
    network, dummy, length = pod_cidr.partition("/")
    first = _ipv4_int(None, None, network)
    return first, first | ((1 << (32 - int(length))) - 1)


def _remember(cache, nodes, digests, fresh):
    """Keep this (valid) fleet's records for the next run."""
    cache.changed = bool(fresh) or len(nodes) != len(cache.hosts) or any(h not in nodes for h in cache.hosts)
    cache.revalidated = fresh
    if cache.changed:
        cache.hosts = {host: (digests[host], node) for host, node in nodes.items() if digests[host] is not None}


def _conflicts(nodes, fresh, previous):
    """Whether the fleet-wide checks could fail. The unchanged hosts were
    part of a fleet that passed them, and dropping hosts cannot break them,
    so only conflicts involving a ``fresh`` host are looked for. True is a
    suspicion, not a verdict: the caller then runs the full check, which
    raises the same error a run without cache would."""
    if not fresh:
        return False
    fresh_set = set(fresh)
    node_ips = {node["ipv4"] for node in nodes.values()}
    if len(node_ips) != len(nodes):
        return True
    intervals = sorted(_pod_range(n["pod_cidr"]) + (h,) for h, n in nodes.items() if n["pod_cidr"])
    if any(current[0] <= before[1] for before, current in zip(intervals, intervals[1:])):
        return True
    keys, ips = set(), set()
    for host, node in nodes.items():
        if host not in fresh_set:
            for ep in node["endpoints"]:
                keys.add((ep["namespace"], ep["name"]))
                ips.add(ep["ipv4"])
    if not node_ips.isdisjoint(ips):  # a changed node address taken by an unchanged endpoint
        return True
    starts = [item[0] for item in intervals]
    for host in fresh:
        if _host_conflicts(host, nodes[host], keys, ips, node_ips, intervals, starts):
            return True
        if _pod_cidr_moved(host, nodes, previous) and _holds_others(nodes[host], host, nodes):
            return True
    return False


def _host_conflicts(host, node, keys, ips, node_ips, intervals, starts):
    """A fresh host's endpoints against everything seen so far (which they
    join, so that two fresh hosts are checked against each other too)."""
    ifnames, netnses = set(), set()
    for ep in node["endpoints"]:
        key, address = (ep["namespace"], ep["name"]), ep["ipv4"]
        if key in keys or address in ips or address in node_ips:
            return True
        keys.add(key)
        ips.add(address)
        value = _ipv4_int(None, None, address)
        index = bisect.bisect_right(starts, value) - 1
        if index >= 0 and value <= intervals[index][1] and intervals[index][2] != host:
            return True
        ifname, netns = naming.endpoint_ifname(ep), ep["netns"]
        if ifname in ifnames or (netns and netns in netnses):
            return True
        ifnames.add(ifname)
        netnses.add(netns)
    return False


def _pod_cidr_moved(host, nodes, previous):
    known = previous.get(host)
    return nodes[host]["pod_cidr"] and (known is None or known[1]["pod_cidr"] != nodes[host]["pod_cidr"])


def _holds_others(node, host, nodes):
    """Whether a (new or changed) pod_cidr takes in another host's endpoint:
    a scan of every address, paid only when a pod_cidr changes."""
    first, last = _pod_range(node["pod_cidr"])
    return any(first <= _ipv4_int(None, None, ep["ipv4"]) <= last
               for other, other_node in nodes.items() if other != host for ep in other_node["endpoints"])


def _check_fleet(nodes):
    """Checks that need the whole fleet: uniqueness and address overlaps.

    Linear in endpoints (plus a sort of the pod CIDRs): the fleet can hold
    tens of thousands of endpoints on a thousand hosts.
    """
    node_ips, keys, ips = {}, {}, {}
    for host, node in sorted(nodes.items()):
        if node["ipv4"] in node_ips:
            _fail(_where(host), "palisade_node.ipv4", "%s is also the address of host '%s'" % (node["ipv4"], node_ips[node["ipv4"]]))
        node_ips[node["ipv4"]] = host
    # Pod CIDRs as sorted integer intervals: overlaps are neighbours once sorted,
    # and an address finds the only interval that can hold it by bisection.
    intervals = sorted(
        (int(net.network_address), int(net.broadcast_address), host, net)
        for host, net in ((h, ipaddress.IPv4Network(n["pod_cidr"])) for h, n in nodes.items() if n["pod_cidr"])
    )
    for previous, current in zip(intervals, intervals[1:]):
        if current[0] <= previous[1]:
            first, second = sorted((previous, current), key=lambda item: item[2])
            _fail(_where(second[2]), "palisade_node.pod_cidr",
                  "%s overlaps the pod_cidr %s of host '%s'" % (second[3], first[3], first[2]))
    starts = [item[0] for item in intervals]

    def pod_cidr_owner(address):
        index = bisect.bisect_right(starts, address) - 1
        if index >= 0 and address <= intervals[index][1]:
            return intervals[index][2], intervals[index][3]
        return None, None

    for host, node in sorted(nodes.items()):
        ifnames, netnses = {}, {}
        for index, ep in enumerate(node["endpoints"]):
            key = naming.endpoint_key(ep)
            where = _where(host, key, index)
            if key in keys:
                _fail(where, "name", "endpoint %s is also declared on host '%s' (names are unique per namespace, fleet-wide)" % (key, keys[key]))
            keys[key] = host
            if ep["ipv4"] in ips:
                _fail(where, "ipv4", "%s is also the address of endpoint %s" % (ep["ipv4"], ips[ep["ipv4"]]))
            if ep["ipv4"] in node_ips:
                _fail(where, "ipv4", "%s is the node address of host '%s'" % (ep["ipv4"], node_ips[ep["ipv4"]]))
            ips[ep["ipv4"]] = key
            owner, net = pod_cidr_owner(int(ipaddress.IPv4Address(ep["ipv4"])))
            if owner is not None and owner != host:
                _fail(where, "ipv4", "%s lies inside the pod_cidr %s of host '%s'" % (ep["ipv4"], net, owner))
            ifname = naming.endpoint_ifname(ep)
            if ifname in ifnames:
                _fail(where, "interface", "interface %s is also used by endpoint %s on this host" % (ifname, ifnames[ifname]))
            ifnames[ifname] = key
            netns = ep["netns"]
            if netns and netns in netnses:
                _fail(where, "netns", "network namespace %s is also used by endpoint %s" % (netns, netnses[netns]))
            if netns:
                netnses[netns] = key
