# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: netns
short_description: Run tasks inside a network namespace of the controller machine
description:
  - Treats a named network namespace on the controller machine as a managed host, the way the
    palisade lab materialises a fleet on one machine.
  - Commands run with C(nsenter --net) in that namespace and in a private mount namespace where
    C(/sys) shows the namespace's own network devices while C(/sys/fs/bpf) stays the machine's bpffs,
    so netlink, sysfs-based facts and pinned BPF objects all behave as on a real host.
  - Files are copied locally, since the mount namespace of the machine is shared.
author: palisade.ebpf developers (@palisade-ebpf)
version_added: 0.1.0
options:
  netns:
    description:
      - Name of the network namespace (under C(/run/netns)) or an absolute path to a namespace file.
      - When unset, it is derived from the inventory hostname with the lab's naming rule
        C(<lab_prefix>-h-<inventory_hostname>).
    type: str
    vars:
      - name: ansible_netns
  inventory_hostname:
    description: The inventory hostname, used to derive the namespace name.
    type: str
    vars:
      - name: inventory_hostname
  lab_prefix:
    description:
      - The lab prefix shared with the lab role and the endpoint naming rule.
      - When unset, the collection's default (docs/settings.md).
    type: str
    vars:
      - name: palisade_lab_prefix
    env:
      - name: PALISADE_LAB_PREFIX
extends_documentation_fragment:
  - connection_pipelining
notes:
  - Needs root, C(nsenter) and C(unshare) (util-linux) on the controller machine.
"""

import os
import shlex

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.connection.local import Connection as LocalConnection
from ansible.utils.display import Display

from ansible_collections.palisade.ebpf.plugins.module_utils._naming import host_netns

display = Display()

# Runs inside the target netns: a private mount namespace in which /sys is
# remounted (so /sys/class/net lists this namespace's devices) while the
# machine's bpffs is carried over, so pinned maps and programs stay visible.
_SYSFS_WRAPPER = (
    'k=$(mktemp -d /run/.palisade-bpf.XXXXXX) && '
    'mount --bind /sys/fs/bpf "$k" && '
    'mount -t sysfs sysfs /sys && '
    'mount --move "$k" /sys/fs/bpf && rmdir "$k" && '
    'exec "$0" -c "$1"'
)


def netns_path(name):
    """Absolute path of a namespace given by name or path."""
    return name if name.startswith("/") else os.path.join("/run/netns", name)


def wrap_command(path, cmd):
    """The command line that runs ``cmd`` (a shell string) inside namespace ``path``."""
    return "nsenter --net=%s -- unshare --mount --propagation private /bin/sh -c %s /bin/sh %s" % (
        shlex.quote(path),
        shlex.quote(_SYSFS_WRAPPER),
        shlex.quote(cmd),
    )


class Connection(LocalConnection):
    """Local execution, entered into a network namespace."""

    transport = "palisade.ebpf.netns"
    has_pipelining = True

    def _netns_path(self):
        name = self.get_option("netns")
        if not name:
            hostname = self.get_option("inventory_hostname")
            if not hostname:
                raise AnsibleConnectionFailure("netns connection: no netns and no inventory_hostname to derive it from")
            name = host_netns(hostname, self.get_option("lab_prefix"))
        return netns_path(name)

    def _connect(self):
        path = self._netns_path()
        if not os.path.exists(path):
            raise AnsibleConnectionFailure(
                "network namespace %s does not exist (is the lab up? ansible-playbook playbooks/lab.yml -e lab_state=present)" % path
            )
        self._netns = path
        return super(Connection, self)._connect()

    def exec_command(self, cmd, in_data=None, sudoable=True):
        if not self._connected:
            self._connect()
        wrapped = wrap_command(self._netns, cmd)
        display.vvv("NETNS %s: %s" % (self._netns, cmd), host=self.get_option("inventory_hostname"))
        return super(Connection, self).exec_command(wrapped, in_data=in_data, sudoable=sudoable)
