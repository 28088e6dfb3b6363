# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lab_inputs: the inventory's hosts and endpoints in palisade.ebpf.lab's terms."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.plugin_utils._inventory import NODE_VAR, Inventory

SSH_TRANSPORTS = ("ssh", "paramiko", "smart", "ansible.builtin.ssh", "ansible.builtin.paramiko_ssh")


def lab_inputs(hostvars, hosts, default_transport="ssh"):
    """{hosts: [{name, ipv4, ssh}], endpoints: [{host, name, namespace, netns?, ports}]}.

    A host is materialised with sshd when Ansible reaches it over ssh, which
    is also what a host without ``ansible_connection`` gets by default.
    """
    inventory = Inventory(hostvars, hosts)
    out_hosts, out_endpoints = [], []
    for name in inventory.hosts:
        node = inventory.var(name, NODE_VAR)
        if not isinstance(node, dict):
            continue
        connection = inventory.var(name, "ansible_connection") or default_transport
        out_hosts.append({"name": name, "ipv4": node.get("ipv4"), "ssh": connection in SSH_TRANSPORTS})
        for endpoint in inventory.endpoints(name):
            ep = endpoint.data
            entry = {
                "host": name,
                "name": ep.get("name"),
                "namespace": ep.get("namespace") or "default",
                "ports": [{"port": p.get("port"), "protocol": p.get("protocol") or "TCP"} for p in ep.get("ports") or []],
            }
            if ep.get("netns"):
                entry["netns"] = ep["netns"]
            out_endpoints.append(entry)
    return {"hosts": out_hosts, "endpoints": out_endpoints}


class FilterModule(object):

    def filters(self):
        return {"lab_inputs": lab_inputs}
