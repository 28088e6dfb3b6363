# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that build the all-pairs probe list and print its matrix."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils._naming import endpoint_key
from ansible_collections.palisade.ebpf.plugins.plugin_utils._inventory import Inventory


def _source_key(text):
    """A probe's ``from``: ``namespace/name``, or ``name`` in namespace default."""
    return text if "/" in text else endpoint_key({"name": text})


def probe_matrix(hostvars, hosts, source_host):
    """Probes from every endpoint of ``source_host`` to every other endpoint,
    on each destination port (80/TCP when it declares none)."""
    return _probes_from_host(Inventory(hostvars, hosts), source_host)


def _probes_from_host(inventory, source_host):
    probes = []
    destinations = inventory.endpoints()
    for src in inventory.endpoints(source_host):
        for dst in destinations:
            if dst.key == src.key:
                continue
            for port in dst.data.get("ports") or [{"port": 80, "protocol": "TCP"}]:
                probes.append({"from": src.key, "to": dst.data["ipv4"], "port": port["port"],
                               "protocol": port.get("protocol", "TCP")})
    return probes


def host_endpoints(hostvars, host):
    """``host``'s palisade_endpoints, wherever the inventory keeps them (its
    variables, or the fleet file of the palisade.ebpf.fleet inventory plugin)."""
    return [endpoint.data for endpoint in Inventory(hostvars, [host]).endpoints(host)]


def probes_from(probes, endpoints):
    """The probes whose source is one of ``endpoints`` (a host's palisade_endpoints)."""
    own = {endpoint_key(ep) for ep in endpoints or []}
    return [p for p in probes or [] if _source_key(p["from"]) in own]


def reachability_matrix(hostvars, hosts, result_var="palisade_probe"):
    """Lines of a table: one row per source endpoint, one column per destination port."""
    inventory = Inventory(hostvars, hosts)
    names = {ep.data["ipv4"]: ep.key for ep in inventory.endpoints()}
    rows, columns = {}, []
    for host in hosts:
        registered = inventory.var(host, result_var) or {}
        for result in registered.get("results", []):
            probe = result
            column = "%s:%s/%s" % (names.get(probe["to"], probe["to"]), probe["port"], probe.get("protocol", "TCP"))
            if column not in columns:
                columns.append(column)
            rows.setdefault(probe["from"], {})[column] = result["verdict"]
    columns.sort()
    width = max([len(r) for r in rows] + [10])
    lines = ["%-*s  %s" % (width, "from -> to", "  ".join(columns))]
    for row in sorted(rows):
        cells = ["%-*s" % (len(c), rows[row].get(c, "-")) for c in columns]
        lines.append("%-*s  %s" % (width, row, "  ".join(cells)))
    return lines


def fleet_probe_matrix(hostvars, hosts):
    """probe_matrix from every host's endpoints: the all-pairs list for a trace."""
    inventory = Inventory(hostvars, hosts)
    probes = []
    for host in hosts:
        probes.extend(_probes_from_host(inventory, host))
    return probes


def _describe_probe(probe):
    text = "%s -> %s:%s/%s" % (probe["from"], probe["to"], probe["port"], probe.get("protocol") or "TCP")
    http = probe.get("http")
    if http:
        text += " %s %s" % ((http.get("method") or "GET").upper(), http.get("path") or "/")
    return text


def observed_table(hostvars, hosts, result_var="palisade_probe"):
    """One line per probe actually sent (probe module results of every host)."""
    inventory = Inventory(hostvars, hosts)
    lines = []
    for host in hosts:
        for result in (inventory.var(host, result_var) or {}).get("results", []):
            status = result.get("http_status")
            detail = "HTTP %s" % status if status else (result.get("error") or "connected")
            lines.append((_describe_probe(result), "%-5s (%s)" % (result["verdict"], detail)))
    width = max([len(text) for text, _v in lines] + [5])
    return ["%-*s  %s" % (width, text, verdict) for text, verdict in sorted(lines)]


def verdict_table(probes, results, observed=None):
    """One line per probe: the computed verdict (policy_trace) and, when
    ``observed`` (probe module results, same order) is given, what real
    packets did."""
    described = [_describe_probe(p) for p in probes]
    width = max([len(d) for d in described] + [5])
    lines = []
    for index, (text, result) in enumerate(zip(described, results)):
        l7 = result.get("l7")
        line = "%-*s  %-5s (l4 %s%s)" % (width, text, result["verdict"], result["l4"], ", l7 %s" % l7 if l7 else "")
        if observed is not None:
            seen = observed[index]
            status = seen.get("http_status")
            line += "  observed %s%s" % (seen["verdict"], " (HTTP %s)" % status if status else "")
        lines.append(line + "  " + (result.get("reason") or ""))
    return lines


class FilterModule(object):

    def filters(self):
        return {
            "probe_matrix": probe_matrix,
            "fleet_probe_matrix": fleet_probe_matrix,
            "probes_from": probes_from,
            "host_endpoints": host_endpoints,
            "reachability_matrix": reachability_matrix,
            "observed_table": observed_table,
            "verdict_table": verdict_table,
        }
