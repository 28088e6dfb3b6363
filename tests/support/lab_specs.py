# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small lab (three hosts, one over SSH; endpoints with TCP, UDP and SCTP
ports, one in a namespace the inventory names) for the lab's unit tests, and
what an observer would report for it."""

from __future__ import absolute_import, division, print_function

from ansible_collections.palisade.ebpf.plugins.module_utils._lab import plan as lab

HOSTS = [
    {"name": "node1", "ipv4": "192.0.2.11"},
    {"name": "node2", "ipv4": "192.0.2.12"},
    {"name": "node3", "ipv4": "192.0.2.13", "ssh": True},
]
ENDPOINTS = [
    {"host": "node1", "name": "deathstar-1", "ports": [{"port": 80, "protocol": "TCP"}]},
    {"host": "node1", "name": "tiefighter"},
    {"host": "node2", "name": "dns", "namespace": "kube", "netns": "dns-ns",
     "ports": [{"port": 53, "protocol": "udp"}, {"port": 53, "protocol": "TCP"}, {"port": 3868, "protocol": "SCTP"}]},
]


def make_spec(hosts=None, endpoints=None, prefix="pal", **kwargs):
    kwargs.setdefault("server_rev", "rev1")
    return lab.LabSpec(prefix, HOSTS if hosts is None else hosts,
                       ENDPOINTS if endpoints is None else endpoints, **kwargs)


def desired(spec=None):
    return lab.desired_objects(spec or make_spec())[0]


def copies(objs, **meta):
    """What an observer would report for a lab in exactly this state."""
    return [lab.LabObject(o.kind, o.ident, o.attrs, dict(meta)) for o in objs]


def find(objs, kind, *ident):
    matches = [o for o in objs if o.kind == kind and o.ident[:len(ident)] == ident]
    assert matches, "no %s %r" % (kind, ident)
    return matches[0]
