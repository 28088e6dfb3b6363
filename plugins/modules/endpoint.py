#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: endpoint
short_description: Plumb workload network namespaces into this host
version_added: 0.1.0
description:
  - Connects each endpoint's network namespace to the host with a veth pair, gives the endpoint its
    address, a default route through a link-local gateway and a permanent neighbour entry for it,
    and installs the endpoint's C(/32) route on the host, marked with the collection's route protocol.
  - An endpoint that names an existing O(endpoints[].interface) is adopted; only its host route is managed.
    The interface must exist, also in check mode; a missing one fails the task before anything is written.
  - Host-side interfaces it creates carry the alias C(palisade:<namespace>/<name>); with O(purge=true)
    such interfaces that are no longer listed are deleted. Interfaces without that alias are never touched.
  - Sets C(net.ipv4.ip_forward=1) in the host's network namespace.
author: palisade.ebpf developers (@palisade-ebpf)
extends_documentation_fragment:
  - palisade.ebpf.attributes
requirements:
  - pyroute2 (Debian package python3-pyroute2)
options:
  endpoints:
    description: The endpoints of this host, as in the inventory's C(palisade_endpoints).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Endpoint name, unique per namespace.
        type: str
        required: true
      namespace:
        description: The endpoint's namespace (the Kubernetes-style one, not the network namespace).
        type: str
        default: default
      ipv4:
        description: The endpoint's address.
        type: str
        required: true
      labels:
        description: Labels, shown in diffs.
        type: dict
        default: {}
      ports:
        description: Named ports; accepted for symmetry with the inventory, not used for plumbing.
        type: list
        elements: dict
        default: []
      netns:
        description: Named network namespace the endpoint lives in; created when missing.
        type: str
      interface:
        description: An existing host-side interface to adopt instead of creating a veth pair.
        type: str
  state:
    description:
      - V(present) plumbs every listed endpoint.
      - V(gathered) writes nothing and returns the endpoints of this host (those
        whose host-side interface carries the collection's alias) in
        RV(gathered), in the form O(endpoints) takes. O(endpoints) must be empty.
    type: str
    choices: [present, gathered]
    default: present
  purge:
    description: Remove endpoint interfaces this collection created that are not in O(endpoints).
    type: bool
    default: true
  lab_prefix:
    description: Prefix of derived network namespace names.
    type: str
    default: pal
  route_protocol:
    description: Route protocol number that marks routes as the collection's.
    type: int
    default: 201
"""

EXAMPLES = r"""
- name: Plumb this host's endpoints
  palisade.ebpf.endpoint:
    endpoints:
      - name: deathstar-1
        labels: {org: empire, class: deathstar}
        ipv4: 10.1.1.10

- name: Read the endpoints this host has
  palisade.ebpf.endpoint:
    state: gathered
  register: host_endpoints
"""

RETURN = r"""
before:
  description:
    - The endpoints of this host before the task, in the input schema of
      O(endpoints), sorted by namespace and name. An endpoint is on the host
      when its host-side interface carries the collection's alias.
    - V(ipv4) is the address of the endpoint's owned host route (null when
      that route is missing); V(netns) is set where the endpoint's C(eth0) is
      found; the kernel holds no labels, so V(labels) are those of the listed
      endpoint of that name (and absent for unlisted ones). O(endpoints[].ports)
      are not plumbing and are not reported.
  returned: when O(state=present)
  type: list
  elements: dict
  sample:
    - {name: deathstar-1, namespace: default, ipv4: 10.1.1.10, labels: {org: empire}, netns: pal-e-default-deathstar-1}
after:
  description:
    - The endpoints of this host after the task, in the form of RV(before).
      These are the listed ones and, without O(purge), the unlisted ones that stay.
  returned: when O(state=present)
  type: list
  elements: dict
  sample:
    - {name: deathstar-1, namespace: default, ipv4: 10.1.1.10, labels: {org: empire}, netns: pal-e-default-deathstar-1}
changes:
  description:
    - The writes, one per line, in the order they were (or in check mode
      would be) made. C(+) creates, C(~) changes in place, C(-) removes.
      Lines about the inside of an endpoint's network namespace start with
      its name.
    - With C(--diff), the diff shows RV(before) and RV(after) one endpoint
      per line, and these lines as its C(prepared) text.
  returned: when O(state=present)
  type: list
  elements: str
  sample:
    - + veth lxcd96b5160 <-> pal-e-default-deathstar-1:eth0
    - "+ pal-e-default-deathstar-1: address 10.1.1.10/32 dev eth0"
    - + route 10.1.1.10/32 dev lxcd96b5160 scope link table main
endpoints:
  description: The plumbing of each listed endpoint (host-side interface, netns, MACs).
  returned: when O(state=present)
  type: list
  elements: dict
  sample:
    - {key: default/deathstar-1, ipv4: 10.1.1.10, ifname: lxcd96b5160, netns: pal-e-default-deathstar-1,
       mac: "0a:1b:2c:3d:4e:5f", host_mac: "0e:1b:2c:3d:4e:5f", adopted: false}
gathered:
  description:
    - With O(state=gathered), the endpoints of this host in the form of
      RV(before) (without labels, which the kernel does not hold). Nothing is
      written.
  returned: when O(state=gathered)
  type: list
  elements: dict
  sample:
    - {name: deathstar-1, namespace: default, ipv4: 10.1.1.10, netns: pal-e-default-deathstar-1}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.palisade.ebpf.plugins.module_utils import _endpoint as ep_utils
from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import LAB_PREFIX, ROUTE_PROTOCOL
from ansible_collections.palisade.ebpf.plugins.module_utils._result import exit_reconciled


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoints=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                namespace=dict(type="str", default="default"),
                ipv4=dict(type="str", required=True),
                labels=dict(type="dict", default={}),
                ports=dict(type="list", elements="dict", default=[]),
                netns=dict(type="str"),
                interface=dict(type="str"),
            )),
            state=dict(type="str", default="present", choices=["present", "gathered"]),
            purge=dict(type="bool", default=True),
            lab_prefix=dict(type="str", default=LAB_PREFIX),
            route_protocol=dict(type="int", default=ROUTE_PROTOCOL),
        ),
        supports_check_mode=True,
    )
    if not ep_utils.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2 (Debian: python3-pyroute2)"), exception=str(ep_utils.PYROUTE2_IMPORT_ERROR))

    params = module.params
    plumber = ep_utils.open_plumber(params["route_protocol"])
    try:
        result = ep_utils.run(plumber, params["endpoints"], purge=params["purge"], prefix=params["lab_prefix"],
                              check_mode=module.check_mode, state=params["state"])
    except ep_utils.EndpointError as exc:
        module.fail_json(msg=str(exc))
    finally:
        plumber.close()
    exit_reconciled(module, result)


if __name__ == "__main__":
    main()
