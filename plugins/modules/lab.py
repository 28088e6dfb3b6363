#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: lab
short_description: Materialise an inventory's hosts and endpoints as network namespaces on this machine
version_added: 0.1.0
description:
  - Builds (or removes) a lab on the machine the module runs on, normally C(localhost) through the
    C(palisade.ebpf.lab) role and C(playbooks/lab.yml).
  - A fabric namespace C(<prefix>-fabric) holds a bridge C(br0). Each host is a namespace
    C(<prefix>-h-<name>) with C(eth0) (a veth into the bridge) carrying its address as a /32,
    an on-link /32 route (protocol C(static)) to every other host and to the controller, and
    C(net.ipv4.ip_forward=1).
  - The root namespace gets exactly one veth C(<prefix>-ctl) into the bridge with C(169.254.199.1/32)
    and a /32 route to each host address, so hosts are reachable from the controller. IPv6 is disabled
    on that veth (the underlay is IPv4 only). Nothing else in the root namespace is touched.
  - Each endpoint is an empty namespace (only C(lo), up) running one server process on the endpoint's
    ports (HTTP answering 200 on TCP ports, echo on UDP ports; 80/TCP when none are declared). Ports on a
    protocol the running kernel lacks (typically SCTP) are skipped with a warning. Plumbing endpoints into
    their hosts is not the lab's job (see M(palisade.ebpf.endpoint)).
  - Hosts with O(hosts[].ssh=true) run C(/usr/sbin/sshd) inside their namespace on C(<ipv4>:22), in a
    private mount namespace whose C(/sys) is the host namespace's and whose C(/sys/fs/bpf) is the
    machine's bpffs. The client key is C(<state_dir>/id_ed25519).
  - The lab's processes are tracked by pid files in O(state_dir) and are only ever stopped by those pids,
    after checking the process's command line.
  - Runs are serialised by a lock on the parent directory of O(state_dir), so concurrent runs (of any
    prefix sharing that directory) do not race.
  - Requires root, pyroute2, C(nsenter) and C(unshare) (util-linux), and for ssh hosts OpenSSH's
    C(sshd) and C(ssh-keygen).
author:
  - palisade.ebpf developers (@palisade-ebpf)
extends_documentation_fragment:
  - palisade.ebpf.attributes
options:
  prefix:
    description:
      - Lab prefix; every namespace and the C(<prefix>-ctl) interface are named after it.
      - Defaults to E(PALISADE_LAB_PREFIX), else C(pal) (the same rule as the C(palisade.ebpf.netns) connection).
      - At most 11 characters of letters, digits, C(.), C(_) and C(-).
    type: str
  state:
    description:
      - V(present) builds or repairs the lab; V(absent) removes everything the lab created, including O(state_dir).
    type: str
    choices: [present, absent]
    default: present
  hosts:
    description:
      - The lab's hosts (inventory hosts with C(palisade_node)).
      - With O(state=absent) they only help find namespaces whose record was lost.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Inventory hostname.
        type: str
        required: true
      ipv4:
        description: The host's C(palisade_node.ipv4).
        type: str
        required: true
      ssh:
        description: Run sshd in the host's namespace (the host is managed over SSH).
        type: bool
        default: false
  endpoints:
    description:
      - The endpoints of all hosts (C(palisade_endpoints)).
    type: list
    elements: dict
    default: []
    suboptions:
      host:
        description: Inventory hostname of the endpoint's host (must be one of O(hosts)).
        type: str
      name:
        description: Endpoint name.
        type: str
        required: true
      namespace:
        description: Endpoint namespace.
        type: str
        default: default
      netns:
        description:
          - Network namespace of the endpoint; default C(<prefix>-e-<namespace>-<name>).
          - A named namespace that already exists is adopted and left in place by O(state=absent).
        type: str
      ports:
        description: Ports to serve; none means 80/TCP.
        type: list
        elements: dict
        default: []
        suboptions:
          port:
            description: Port number.
            type: int
            required: true
          protocol:
            description: C(TCP), C(UDP) or C(SCTP) (case-insensitive).
            type: str
            default: TCP
          name:
            description: Port name (informational).
            type: str
  state_dir:
    description:
      - Directory for the lab's keys, sshd configs, pid files, logs and the server script.
      - Defaults to C(/var/lib/palisade-lab/<prefix>).
    type: path
  server_script:
    description:
      - The endpoint server (C(palisade_lab_server.py)), run with C(/usr/bin/python3).
      - Defaults to C(<state_dir>/palisade_lab_server.py), where the C(palisade.ebpf.lab) role copies it.
      - Servers restart when its content changes.
    type: path
requirements:
  - pyroute2 (Debian C(python3-pyroute2))
notes:
  - The second run with unchanged inputs reports no change.
  - Two labs whose hosts share addresses cannot run at the same time (their root-namespace routes collide);
    the module refuses with a clear message instead of replacing the other lab's route.
seealso:
  - module: palisade.ebpf.endpoint
"""

EXAMPLES = r"""
- name: Bring up a two-host lab with one ssh host and one endpoint
  palisade.ebpf.lab:
    prefix: pal
    hosts:
      - {name: node1, ipv4: 192.0.2.11}
      - {name: node3, ipv4: 192.0.2.13, ssh: true}
    endpoints:
      - host: node1
        name: deathstar-1
        ports:
          - {port: 80, protocol: TCP}
          - {port: 53, protocol: UDP}

- name: Tear the lab down
  palisade.ebpf.lab:
    prefix: pal
    state: absent
"""

RETURN = r"""
prefix:
  description: The lab prefix used.
  returned: always
  type: str
  sample: pal
state_dir:
  description: The lab's state directory.
  returned: always
  type: str
  sample: /var/lib/palisade-lab/pal
ssh_private_key:
  description: Private key that logs in as root on the ssh hosts; null when the lab has none.
  returned: always
  type: str
  sample: /var/lib/palisade-lab/pal/id_ed25519
before:
  description:
    - The lab's objects before the run, one line each in creation order (namespaces, links, addresses, routes,
      sysctls, processes, keys); with C(--diff), the diff's before text.
  returned: always
  type: list
  elements: str
  sample:
    - netns pal-fabric (fabric)
after:
  description:
    - The lab's objects after the run (in check mode, what the run would leave), as RV(before); with C(--diff),
      the diff's after text.
  returned: always
  type: list
  elements: str
  sample:
    - netns pal-fabric (fabric)
    - netns pal-h-node1 (host node1)
    - "route pal-h-node1: 192.0.2.13/32 dev eth0 scope link proto static"
changes:
  description:
    - What was done (or, in check mode, would be done), in order, one line each - C(+) creates, C(-) deletes,
      C(~) updates, replaces or restarts (the word after it says which). With C(--diff), the diff's prepared
      text.
  returned: always
  type: list
  elements: str
  sample:
    - "+ netns pal-h-node1 (host node1)"
    - "~ restart server default/deathstar-1 in pal-e-default-deathstar-1: tcp/80 udp/53 [script 0123456789ab]"
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.palisade.ebpf.plugins.module_utils._lab import (
    plan as lab,
    reconcile as lab_exec,
    kernel as lab_kernel,
)
from ansible_collections.palisade.ebpf.plugins.module_utils import _naming as naming
from ansible_collections.palisade.ebpf.plugins.module_utils._result import exit_reconciled


def main():
    port_spec = dict(
        port=dict(type="int", required=True),
        protocol=dict(type="str", default="TCP"),
        name=dict(type="str"),
    )
    module = AnsibleModule(
        argument_spec=dict(
            prefix=dict(type="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            hosts=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                ipv4=dict(type="str", required=True),
                ssh=dict(type="bool", default=False),
            )),
            endpoints=dict(type="list", elements="dict", default=[], options=dict(
                host=dict(type="str"),
                name=dict(type="str", required=True),
                namespace=dict(type="str", default="default"),
                netns=dict(type="str"),
                ports=dict(type="list", elements="dict", default=[], options=port_spec),
            )),
            state_dir=dict(type="path"),
            server_script=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    if not lab_kernel.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2 (Debian: python3-pyroute2)"),
                         exception=str(lab_kernel.PYROUTE2_IMPORT_ERROR))
    if os.geteuid() != 0:
        module.fail_json(msg="the lab manages network namespaces and needs root (use become)")

    params = module.params
    try:
        prefix = lab.validate_prefix(naming.lab_prefix(params["prefix"]))
        state_dir = params["state_dir"] or lab.default_state_dir(prefix)
        server_script = params["server_script"] or os.path.join(state_dir, lab.SERVER_SCRIPT_NAME)
        spec = lab.LabSpec(
            prefix, params["hosts"], params["endpoints"], state_dir=state_dir, server_script=server_script,
            server_rev=lab_exec.script_rev(server_script), protocols=lab_exec.kernel_protocols(),
        )
        bins = {"nsenter": module.get_bin_path("nsenter", required=True),
                "unshare": module.get_bin_path("unshare", required=True)}
        if params["state"] == "present" and spec.ssh_hosts:
            bins["sshd"] = module.get_bin_path("sshd", required=True, opt_dirs=["/usr/sbin"])
            bins["ssh-keygen"] = module.get_bin_path("ssh-keygen", required=True)
        result = lab_exec.reconcile(spec, params["state"], module.check_mode, bins)
    except lab.LabError as exc:
        module.fail_json(msg=str(exc))
    except (OSError, IOError, lab_kernel.NetlinkError) as exc:
        module.fail_json(msg="lab %s: %s" % (params["state"], exc))
    exit_reconciled(module, result)


if __name__ == "__main__":
    main()
