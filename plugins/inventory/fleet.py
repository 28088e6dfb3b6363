# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""palisade.ebpf.fleet: a whole fleet from one file, read fast."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet
short_description: A fleet's hosts and their variables from one file, read without Ansible's YAML machinery
version_added: 0.2.0
description:
  - Reads a fleet file, C(*.fleet.json), C(*.fleet.yml) or C(*.fleet.yaml), that holds every host with its variables
    (C(palisade_node), C(palisade_endpoints), connection settings), the groups, and the variables of group C(all).
  - Made for large fleets. Ansible reads C(host_vars/) files one by one with a YAML parser that tags every value,
    which at a thousand hosts of sixty endpoints costs minutes; this plugin parses the one file with C(json) or
    libyaml and hands the values to Ansible as plain data (docs/fleet-scale.md).
  - The file is data, not templates; a C({{ }}) in it stays as written.
  - Every host variable of the file becomes an Ansible host variable except C(palisade_endpoints), the bulk of a
    large fleet, which the collection reads from the file itself (the path is in C(palisade_fleet_file), a variable
    of group C(all)).
  - Enable it in C(ansible.cfg) before C(auto) and C(yaml), so that the file is not parsed a second time by them
    (C([inventory] enable_plugins = palisade.ebpf.fleet, host_list, yaml, ini)).
author: palisade.ebpf developers (@palisade-ebpf)
options:
  plugin:
    description: Names this plugin.
    required: true
    choices: [palisade.ebpf.fleet]
notes:
  - 'The file: C({"plugin": "palisade.ebpf.fleet", "vars": {...}, "groups": {group: [host, ...]}, "hosts": {host:
    {variable: value}}}). C(vars) and C(groups) are optional; a host in no group is in C(ungrouped).'
"""

EXAMPLES = r"""
# fleet.fleet.json, written by the tool that knows the fleet (a CMDB export, tools/fleetgen.py --write-fleet-file)
# {"plugin": "palisade.ebpf.fleet",
#  "vars": {"palisade_policy_files": ["policies/*.yaml"]},
#  "groups": {"palisade_nodes": ["node-000"]},
#  "hosts": {"node-000": {"ansible_host": "192.0.2.10",
#                         "palisade_node": {"ipv4": "192.0.2.10", "pod_cidr": "10.0.0.0/24"},
#                         "palisade_endpoints": [{"name": "web-1", "ipv4": "10.0.0.10", "labels": {"app": "web"}}]}}}
"""

import os

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseFileInventoryPlugin

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _fleet_file as fleet_file


class InventoryModule(BaseFileInventoryPlugin):

    NAME = "palisade.ebpf.fleet"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(fleet_file.SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        try:
            data = fleet_file.read(path, keep=False)
        except fleet_file.FleetFileError as exc:
            raise AnsibleParserError(str(exc))
        for name, value in (data.get("vars") or {}).items():
            self.inventory.set_variable("all", name, value)
        for host, variables in data["hosts"].items():
            self.inventory.add_host(host)
            for name, value in (variables or {}).items():
                if name not in fleet_file.FILE_ONLY_VARS:
                    self.inventory.set_variable(host, name, value)
        for group, members in (data.get("groups") or {}).items():
            self.inventory.add_group(group)
            for host in members:
                self.inventory.add_child(group, host)
        # The collection's inventory reader takes the endpoints from the file.
        self.inventory.set_variable("all", fleet_file.FILE_VAR, os.path.abspath(path))
