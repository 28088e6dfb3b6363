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
"""

RETURN = r"""
actions:
  description: What was (or, in check mode, would be) done, per endpoint.
  returned: always
  type: dict
  sample:
    default/deathstar-1:
      - create_veth lxcd96b5160 <-> pal-e-default-deathstar-1:eth0
      - peer_addr 10.1.1.10/32 dev eth0
removed:
  description: Endpoints whose interfaces were removed (or released, when adopted).
  returned: always
  type: list
  elements: str
  sample: [default/old-endpoint]
endpoints:
  description: The plumbing of each endpoint (host-side interface, netns, MACs).
  returned: always
  type: list
  elements: dict
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.palisade.ebpf.plugins.module_utils import _endpoint as ep_utils

try:
    from pyroute2 import IPRoute
    from pyroute2 import netns as pyroute2_netns
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError:
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = traceback.format_exc()


def run(module):
    params = module.params
    wants = [ep_utils.want_endpoint(ep, params["lab_prefix"]) for ep in params["endpoints"]]
    plumber = ep_utils.Plumber(IPRoute, pyroute2_netns, params["route_protocol"])
    try:
        links = plumber.host_links()
        host_routes = plumber.host_routes()
        before, after, actions, plans = [], [], {}, []
        for want in wants:
            have = plumber.observe(want, links, host_routes)
            plan = ep_utils.plan_endpoint(want, have)
            plans.append((want, plan))
            line = ep_utils.describe(want)
            after.append(line)
            if (have.get("link") or {}).get("alias") == want["alias"]:
                # Present in the kernel; say what is missing if anything is.
                before.append(line + (" (needs %s)" % ", ".join(action[0] for action in plan) if plan else ""))
            if plan:
                actions[want["key"]] = ["%s %s" % item for item in plan]
        stale = []
        if params["purge"]:
            stale = ep_utils.plan_purge({w["alias"] for w in wants}, links.values())
            for _action, ifname, key in stale:
                before.append("%s (interface %s)" % (key, ifname))
        forward = ep_utils.read_sysctl("net.ipv4.ip_forward") != "1"
        for want, plan in plans:
            if any(action[0] == "missing_interface" for action in plan) and not module.check_mode:
                module.fail_json(msg="endpoint %s: interface %s does not exist on this host (an endpoint with 'interface' is adopted, not created)"
                                 % (want["key"], want["ifname"]))
        changed = bool(actions or stale or forward)
        if changed and not module.check_mode:
            if forward:
                ep_utils.set_sysctl("net.ipv4.ip_forward", 1)
            for want, plan in plans:
                if plan:
                    plumber.apply(want, plan)
            for item in stale:
                plumber.purge(item)
        result = {
            "changed": changed,
            "actions": actions,
            "removed": [key for _a, _i, key in stale],
            "endpoints": [{k: w[k] for k in ("key", "ipv4", "ifname", "netns", "mac", "host_mac", "adopted")} for w in wants],
        }
        if forward:
            result["actions"]["host"] = ["sysctl net.ipv4.ip_forward=1"]
        if module._diff:
            result["diff"] = {
                "before": "\n".join(sorted(before)) + "\n" if before else "",
                "after": "\n".join(sorted(after)) + "\n" if after else "",
                "before_header": "endpoints (kernel)",
                "after_header": "endpoints (inventory)",
            }
            if actions:
                result["diff"]["prepared"] = "\n".join(
                    "%s: %s" % (key, "; ".join(lines)) for key, lines in sorted(actions.items()))
        return result
    except ep_utils.EndpointError as exc:
        module.fail_json(msg=str(exc))
    finally:
        plumber.close()


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
            purge=dict(type="bool", default=True),
            lab_prefix=dict(type="str", default="pal"),
            route_protocol=dict(type="int", default=201),
        ),
        supports_check_mode=True,
    )
    if not HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2 (Debian: python3-pyroute2)"), exception=PYROUTE2_IMPORT_ERROR)
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
