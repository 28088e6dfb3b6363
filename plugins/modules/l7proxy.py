#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: l7proxy
short_description: Run this host's L7 (HTTP) proxy, HAProxy, and hand its listener to the eBPF datapath
version_added: 0.1.0
description:
  - Reconciles the host's HAProxy (master-worker mode) with its desired state, touching only what differs;
    a second run with the same input reports C(changed=false).
  - Writes the proxy's map files under O(dir) atomically, starts HAProxy when it is not running, reloads it
    hitlessly when C(haproxy.cfg) changed since the last (re)load (SIGUSR2 to the master; HAProxy 2.6 hands
    the listening sockets to the new worker, so the listener and its socket map entry survive), and otherwise
    brings the running worker's maps in line through the stats socket (C(add/set/del map), effective on the
    next request) - repairing changes made there by hand. More than 1000 runtime changes reload instead.
  - Registers HAProxy's listener on C(127.0.0.1:)O(port) in slot 0 of the datapath's C(proxy_sockets) socket
    map, which the sk_lookup program steers redirected flows to; the socket's cookie is compared first, so an
    unchanged registration is not rewritten.
  - Sets C(net.ipv4.tcp_early_demux=0) in the host's network namespace, so that the proxy's TIME_WAIT sockets
    cannot blackhole flows that stop being redirected.
  - C(haproxy.cfg) is templated (and checked) by the role beforehand; this module never writes it. It must
    have C(master-worker), C(pidfile), C(stats socket <dir>/haproxy.sock ... level admin expose-fd listeners)
    and C(bind 127.0.0.1:<port> transparent).
author: palisade.ebpf developers (@palisade-ebpf)
extends_documentation_fragment:
  - palisade.ebpf.attributes
requirements:
  - HAProxy 2.6 or later (Debian package haproxy)
  - bcc for the managed host's Python (Debian package python3-bpfcc), for the socket map
  - Linux 5.10 or later (listening sockets in a sockmap, pidfd_getfd)
options:
  state:
    description:
      - V(present) runs the proxy as described; V(absent) stops it (soft stop, then SIGTERM), empties the
        socket map slot and removes the map files and state file this module wrote. C(haproxy.cfg) is left
        to the role.
      - V(gathered) changes nothing and returns the map files this module wrote as RV(gathered), in the form of
        O(maps).
    type: str
    choices: [present, absent, gathered]
    default: present
  dir:
    description: The proxy's directory, holding C(haproxy.cfg), its maps, socket, pid file and this module's state.
    type: path
    required: true
  port:
    description: The port of the proxy's listener on 127.0.0.1 (the frontend's C(bind)).
    type: int
    default: 15001
  maps:
    description:
      - Map files by base name (C(<dir>/<name>.map)) and their entries, key to value; keys cannot contain
        whitespace, values cannot contain line breaks. For instance C(endpoints) and C(rules).
    type: dict
    default: {}
  ipcache_packed:
    description:
      - The fleet's IP to identity table, packed as for M(palisade.ebpf.datapath); written as C(identities.map),
        one C(<prefix> <identity>) line per entry (a C(/32) as the bare address). Omit it to leave
        C(identities.map) alone.
    type: str
  ipcache_version:
    description:
      - Take C(identities.map) from the IP table M(palisade.ebpf.datapath) applied on this host (the artifacts it keeps
        in its state directory), which must be at these versions, C({fleet, host}) as C(palisade.ebpf.fleet_state)
        names them; the table then crosses the wire once, for the datapath. Fails when the datapath has not applied
        them yet (in check mode, warns and leaves C(identities.map) as it is). The L7 proxy role passes it.
    type: dict
  datapath_state_dir:
    description: The datapath's state directory, when not its default (see the C(state_dir) option of M(palisade.ebpf.datapath)).
    type: path
  bpffs_dir:
    description:
      - The host's datapath directory on the bpf filesystem (as for M(palisade.ebpf.datapath)); the socket
        map is pinned under its C(maps/). Required with O(state=present), which fails when the datapath is
        not deployed yet.
    type: path
  service_manager:
    description:
      - V(process) runs C(haproxy -W -D) itself; V(systemd) uses the unit O(unit) the role installed;
        V(auto) picks V(systemd) when C(/run/systemd/system) exists.
    type: str
    choices: [auto, process, systemd]
    default: auto
  unit:
    description: The systemd unit, with O(service_manager=systemd).
    type: str
    default: palisade-l7proxy
  haproxy_bin:
    description: The HAProxy executable.
    type: path
    default: /usr/sbin/haproxy
notes:
  - Run it inside the host's network namespace; the listener and the sysctl are per namespace.
  - Run with the managed host's system Python (C(ansible_python_interpreter=/usr/bin/python3)), where bcc is.
"""

EXAMPLES = r"""
- name: Run the L7 proxy
  palisade.ebpf.l7proxy:
    dir: /var/lib/palisade/l7proxy
    port: 15001
    bpffs_dir: /sys/fs/bpf/palisade
    ipcache_packed: "{{ palisade_ipcache_packed }}"
    maps:
      endpoints:
        10.1.1.10: deathstar
      rules:
        deathstar/i/80/987654321: r3f1c9a0d
        deathstar/i/80/0: "-"

- name: Stop it
  palisade.ebpf.l7proxy:
    dir: /var/lib/palisade/l7proxy
    bpffs_dir: /sys/fs/bpf/palisade
    state: absent
"""

RETURN = r"""
before:
  description:
    - The proxy before the run, as a summary (its maps hold the fleet's IP table, too many entries to list;
      RV(changes) says what changes in them).
    - With C(--diff), one line each as the diff's before text.
  returned: when state is present or absent
  type: dict
  contains:
    running:
      description: Whether the HAProxy master runs.
      type: bool
    pid:
      description: The HAProxy master's pid; null when it does not run (or, in RV(after) in check mode, is not started yet).
      type: int
    config:
      description: The first 16 hex digits of the sha256 of the C(haproxy.cfg) the running proxy loaded; null when not known.
      type: str
    maps:
      description:
        - Each map file this module writes, by map name - its number of C(entries) and C(sha256), the first 16 hex
          digits of the sha256 of its text (so that a changed map shows in the diff even when its size does not).
      type: dict
    registered:
      description: Whether the proxy's listener is in slot 0 of the proxy socket map.
      type: bool
    tcp_early_demux:
      description: C(net.ipv4.tcp_early_demux) in this network namespace; null when the kernel has none.
      type: str
  sample:
    running: true
    pid: 4242
    config: "3f1c9a0d2b7e4c11"
    maps: {"endpoints": {"entries": 1, "sha256": "5d2ad0c4c8b1e3f0"}, "rules": {"entries": 2, "sha256": "0b9e6a1d44f2c713"}}
    registered: true
    tcp_early_demux: "0"
after:
  description:
    - The same summary after the run (in check mode, what the run would leave); equal to RV(before) when
      nothing changed.
    - With C(--diff), one line each as the diff's after text.
  returned: when state is present or absent
  type: dict
changes:
  description:
    - What changed (or, in check mode, would change), in order, one line each - C(+) adds, C(-) removes, C(~)
      changes in place. Empty when nothing differed.
    - With C(--diff), the diff's prepared text.
  returned: when state is present or absent
  type: list
  elements: str
  sample:
    - "~ map rules: +2 -1"
    - "~ reload haproxy (configuration changed)"
    - "+ register listener 127.0.0.1:15001 in the proxy socket map"
gathered:
  description: The map files this module wrote, by map name, each key to value (the form of O(maps)).
  returned: when state is gathered
  type: dict
  sample: {"maps": {"endpoints": {"10.1.1.10": "deathstar"}, "identities": {"10.1.1.10": "123456789"}}}
pid:
  description: The HAProxy master's pid (none when it is not running, or would be started in check mode).
  returned: when state is present or absent
  type: int
  sample: 4242
started:
  description: Whether HAProxy was (or would be) started.
  returned: when state is present or absent
  type: bool
reloaded:
  description: Whether HAProxy was (or would be) reloaded.
  returned: when state is present or absent
  type: bool
registered:
  description: Whether the listener was (or would be) put into slot 0 of the proxy socket map.
  returned: when state is present or absent
  type: bool
map_writes:
  description: Map files written plus runtime map entries added, changed or removed.
  returned: when state is present or absent
  type: int
  sample: 3
listener:
  description: The registered listener's socket inode, cookie and a HAProxy pid holding it.
  returned: when state is present and HAProxy runs
  type: dict
  sample: {"inode": 817743, "cookie": 4099, "holder_pid": 4243}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import HAPROXY_BIN, L7_PROXY_PORT, L7_PROXY_UNIT
from ansible_collections.palisade.ebpf.plugins.module_utils._l7proxy import process
from ansible_collections.palisade.ebpf.plugins.module_utils._result import exit_reconciled


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent", "gathered"], default="present"),
            dir=dict(type="path", required=True),
            port=dict(type="int", default=L7_PROXY_PORT),
            maps=dict(type="dict", default={}),
            ipcache_packed=dict(type="str"),
            ipcache_version=dict(type="dict"),
            datapath_state_dir=dict(type="path"),
            bpffs_dir=dict(type="path"),
            service_manager=dict(type="str", choices=["auto", "process", "systemd"], default="auto"),
            unit=dict(type="str", default=L7_PROXY_UNIT),
            haproxy_bin=dict(type="path", default=HAPROXY_BIN),
        ),
        required_if=[("state", "present", ("bpffs_dir",))],
        supports_check_mode=True,
    )
    try:
        result = process.run(module.params, module.check_mode)
    except DatapathError as exc:
        module.fail_json(msg=str(exc), details=exc.details or "")
    exit_reconciled(module, result)


if __name__ == "__main__":
    main()
