#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: fleet_state
short_description: Validate the fleet inventory and compute every host's desired state
version_added: 0.1.0
description:
  - Reads C(palisade_node), C(palisade_endpoints) and C(palisade_namespaces) of every inventory host,
    validates them against the collection's schema and computes each host's share of the desired state.
  - Runs on the controller, once per play (use C(run_once)); it never contacts a host. Invalid input fails
    the task with a message naming the host, the endpoint and the field, before any host is changed.
author: palisade.ebpf developers (@palisade-ebpf)
attributes:
  check_mode:
    description: Computes only; nothing is changed in either mode.
    support: full
  diff_mode:
    description: Changes nothing, so there is no diff.
    support: none
  platform:
    description: Runs on the controller.
    platforms: posix
    support: full
  action:
    description: Implemented as an action plugin.
    support: full
options:
  hosts:
    description: Inventory hosts that form the fleet. Defaults to every host of the inventory (C(groups.all)), whatever C(--limit) says.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Compute the fleet's desired state once
  palisade.ebpf.fleet_state:
  run_once: true
  register: palisade_fleet
"""

RETURN = r"""
hosts:
  description: Per inventory host, its share of the desired state (node, endpoints, routes).
  returned: success
  type: dict
summary:
  description: Counts of nodes and endpoints, and the namespaces seen.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(hosts=dict(type="list", elements="str")), supports_check_mode=True)
    module.fail_json(msg="palisade.ebpf.fleet_state runs on the controller through its action plugin; it cannot run as a plain module")


if __name__ == "__main__":
    main()
