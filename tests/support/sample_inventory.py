# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small inventory as Ansible's hostvars gives it: two palisade nodes
(one reached through the netns connection, one by default transport) and a
host that is not a node. For the filters and actions that read the inventory."""

HOSTVARS = {
    "n1": {"ansible_connection": "palisade.ebpf.netns", "palisade_node": {"ipv4": "192.0.2.1"},
           "palisade_endpoints": [{"name": "a", "ipv4": "10.0.1.1", "ports": [{"port": 53, "protocol": "UDP"}]},
                                  {"name": "b", "namespace": "x", "ipv4": "10.0.1.2", "netns": "custom",
                                   "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}]}]},
    "n2": {"palisade_node": {"ipv4": "192.0.2.2"}, "palisade_endpoints": [{"name": "c", "ipv4": "10.0.2.1"}]},
    "other": {},
}
HOSTS = ["n1", "n2", "other"]
