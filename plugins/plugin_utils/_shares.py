# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-host desired state, computed once for the whole fleet on the controller.

Each host receives only its share: its own endpoints (with the names the
plumbing derives) and the routes that reach every other host's endpoints;
with a computed policy (policy/engine.py) also each endpoint's identity and
policy reference, the distinct policies its endpoints use, and how its view
of the IP -> identity table differs from the fleet-wide one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils import _naming as naming


def reach_routes(fleet):
    """[[host, routes]] in host order: the direct routes by which every
    other host reaches ``host``'s endpoints. The same for the whole fleet,
    so it is computed and kept once; a host's own routes are all the others'
    (``remote_routes``).

    A host with a pod_cidr is reached through that whole prefix; a host without
    one through a /32 per endpoint. The next hop is the host's underlay
    address, which must be reachable from the others (same L2 or routed).
    """
    reach = []
    for host, node in sorted(fleet["nodes"].items()):
        if node["pod_cidr"]:
            routes = [{"dst": node["pod_cidr"], "gateway": node["ipv4"]}]
        else:
            routes = [{"dst": ep["ipv4"] + "/32", "gateway": node["ipv4"]}
                      for ep in sorted(node["endpoints"], key=lambda e: e["ipv4"])]
        reach.append([host, routes])
    return reach


def remote_routes(reach, host):
    """Direct routes from ``host`` to every other host's endpoints, from
    ``reach_routes``."""
    return [route for other, routes in reach if other != host for route in routes]


def endpoint_share(ep, prefix):
    share = {k: ep[k] for k in ("name", "namespace", "labels", "ipv4", "ports", "netns", "interface")}
    share["netns"] = None if ep["interface"] else naming.endpoint_netns(ep, prefix)
    return share


def host_share(fleet, host, prefix=None, policy=None, routes=True):
    """One host's share. ``endpoints`` is what plumbing needs. With
    ``policy`` (an engine.FleetPolicy for this fleet) the share gains
    ``enforcement`` (per endpoint, in the same order: key, host-side
    interface, address, identity and ``policy``, a key of ``policies``),
    ``policies`` and ``ipcache_overrides`` (this host's view of the
    fleet-wide table: its own node address is ``host``)."""
    node = fleet["nodes"][host]
    share = {
        "node": {"name": host, "ipv4": node["ipv4"], "pod_cidr": node["pod_cidr"]},
        "endpoints": [endpoint_share(ep, prefix) for ep in node["endpoints"]],
    }
    if routes:  # fleet_state keeps the fleet's routes once (reach_routes) instead
        share["routes"] = remote_routes(reach_routes(fleet), host)
    if policy is not None:
        policy_share = policy.host_share(host)
        share["enforcement"] = [
            {"key": naming.endpoint_key(ep), "ifname": naming.endpoint_ifname(ep), "ipv4": ep["ipv4"],
             "identity": with_policy["identity"], "policy": with_policy["policy"]}
            for ep, with_policy in zip(node["endpoints"], policy_share["endpoints"])
        ]
        share["policies"] = policy_share["policies"]
        share["ipcache_overrides"] = policy_share["ipcache_overrides"]
    return share


def host_shares(fleet, prefixes=None, policy=None, routes=True):
    """{host: share} for every node; ``prefixes`` maps host -> lab prefix."""
    prefixes = prefixes or {}
    return {host: host_share(fleet, host, prefixes.get(host), policy, routes) for host in fleet["nodes"]}
