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
  - Reads the policies (C(palisade_policies) and the files matched by C(palisade_policy_files), globs relative
    to the playbook directory), computes every endpoint's identity and policy once for the whole fleet, and
    gives each host only its share of it, plus the fleet-wide IP to identity table.
  - Runs on the controller, once per play (use C(run_once)); it never contacts a host. Invalid input fails
    the task with a message naming the host, the endpoint and the field (inventory) or the file, the
    document and the field path (policies), before any host is changed.
  - Keeps the computation's state in a controller-side cache, so that a run after a small inventory change
    recomputes only what the change touches.
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
  cache:
    description: Keep the policy computation's state between runs in O(cache_dir), and start from it.
    type: bool
    default: true
  cache_dir:
    description:
      - Directory of the cache and of the share store on the controller. Defaults to C($XDG_CACHE_HOME/palisade)
        (C(~/.cache/palisade)).
      - The share store is written with or without O(cache).
    type: path
"""

EXAMPLES = r"""
- name: Compute the fleet's desired state once
  palisade.ebpf.fleet_state:
  run_once: true
  register: palisade_fleet
"""

RETURN = r"""
hosts:
  description:
    - Per inventory host that is a palisade node, C({share, endpoints, l7proxy, datapath}); C(share) names the host's share
      in the share store (C(store)), C(endpoints) counts its endpoints, C(l7proxy) says whether its L7 proxy has
      endpoints to serve (C(some)), none (C(none)), or cannot apply its HTTP rules (C(error); the reason is in the
      share and stops only that host, when it runs the proxy).
    - The shares stay on the controller, content-addressed (an object's name is the SHA-256 of its JSON), because
      Ansible copies and walks a registered result several times at a cost that grows with its size; an unchanged
      share keeps its name and is not written again. Each distinct policy is an object of its own, shared by the hosts
      that use it; a share names its policies. The store keeps the objects of this run and the one before.
    - A share is C({node, endpoints, enforcement, policies, ipcache_overrides, l7proxy}). Each endpoint of
      C(enforcement) carries its C(identity) and C(policy), a key of C(policies). C(policies) names, by reference,
      the objects of the distinct policies of the host's endpoints, each C({ingress, egress}); a direction is C({enforced, enforced_by,
      entries}), and each entry C({peers, l4}) gives the peer identities (0 is any peer) that get the same L4 entries
      C([protocol, port_lo, port_hi, deny, http, names]) (protocol 0 any, 1 ICMP with the type as port, 6 TCP, 17
      UDP, 132 SCTP; C(http) the HTTP rules of a redirect, or null; C(names) the policies that contributed).
      Semantics are in docs/policy-engine.md. C(l7proxy) is what the host's L7 proxy needs, C({endpoints, rules,
      rulesets}) (docs/l7.md), or C({error}) when its HTTP rules cannot be applied by the proxy; the error stops
      only a host that runs the proxy.
    - The C(palisade.ebpf.host_want) filter reads a host's share and turns it into each module's arguments.
    - C(datapath) lists the versions of the host's own datapath artifact (its endpoints, the versions of the flat policy
      objects they use, identity labels and own IP table rows), the current one first, then up to two earlier ones the datapath action plugin
      sends deltas from (docs/fleet-scale.md, "What a run ships").
  returned: success
  type: dict
objects:
  description:
    - Names, in the share store, of what the whole fleet shares.
    - C(ipcache_packed) is the fleet-wide IP to identity table, every node address as remote-node (6), packed once per
      run as M(palisade.ebpf.datapath) takes it (base64 of 9-byte records); a host's view is that table followed by
      its share's C(ipcache_overrides) (its own node address is C(host), 1), a later entry winning.
    - C(routes) is C([[host, routes]]), the routes by which the others reach each host's endpoints.
    - C(identities) gives the labels of every endpoint and CIDR identity, by number, for humans (diffs, traces).
    - C(fleet_table) is the version of the fleet's IP table as the artifact hosts keep (C({ipcache}), named by the SHA-256
      of its JSON), C(fleet_table_deltas) the deltas to it from up to two earlier versions, by version.
  returned: success
  type: dict
store:
  description: The share store's directory on the controller (C(shares-<fleet>) in O(cache_dir)).
  returned: success
  type: str
summary:
  description: Counts of nodes, endpoints, rules and endpoint identities, the namespaces seen, whether the policy was
    computed C(full), C(incremental) or found C(unchanged) in the cache, and C(objects_written), the objects this
    run added to the store (0 when nothing changed).
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(hosts=dict(type="list", elements="str"), cache=dict(type="bool", default=True),
                                              cache_dir=dict(type="path")), supports_check_mode=True)
    module.fail_json(msg="palisade.ebpf.fleet_state runs on the controller through its action plugin; it cannot run as a plain module")


if __name__ == "__main__":
    main()
