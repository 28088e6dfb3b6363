# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every default of the collection, defined once.

Python code imports the constants; roles read the same values through the
``palisade.ebpf.defaults`` lookup (``DEFAULTS`` below), so a default changes
in this file and nowhere else. docs/settings.md documents each one, with the
variable that overrides it; a unit test keeps the two in step.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Names every lab object (namespaces, the controller's veth) and, through
# them, the per-host directories below; $PALISADE_LAB_PREFIX overrides it.
LAB_PREFIX = "pal"
# Directory of each lab's keys, sshd configs, pid files and server script.
LAB_STATE_ROOT = "/var/lib/palisade-lab"

# Routes and rules carrying this protocol number are the collection's own:
# purge removes only those. 201 is unassigned in iproute2's rt_protos.
ROUTE_PROTOCOL = 201

# Where each host's programs and maps are pinned: <root>/<prefix>-<host>.
BPFFS_ROOT = "/sys/fs/bpf/palisade"
# Where each host's L7 proxy keeps its files: <root>/<prefix>-<host>/l7proxy.
STATE_ROOT = "/var/lib/palisade"

# L7: flows the datapath hands to the proxy carry this mark under this mask
# (Cilium's MARK_MAGIC_TO_PROXY), and an ip rule at this priority sends them
# to a table whose only route is "local 0.0.0.0/0 dev lo".
L7_MARK = 0x200
L7_MARK_MASK = 0xF00
L7_RULE_PRIORITY = 9
L7_TABLE = 2004
# The proxy's transparent listener on 127.0.0.1, reached only through the
# socket-steering program (or the TPROXY fallback).
L7_PROXY_PORT = 15001
L7_PROXY_UNIT = "palisade-l7proxy"
HAPROXY_BIN = "/usr/sbin/haproxy"

# The values the roles read (lookup('palisade.ebpf.defaults', name)).
DEFAULTS = {
    "lab_prefix": LAB_PREFIX,
    "lab_state_root": LAB_STATE_ROOT,
    "route_protocol": ROUTE_PROTOCOL,
    "bpffs_root": BPFFS_ROOT,
    "state_root": STATE_ROOT,
    "l7_mark": L7_MARK,
    "l7_mark_mask": L7_MARK_MASK,
    "l7_rule_priority": L7_RULE_PRIORITY,
    "l7_table": L7_TABLE,
    "l7_proxy_port": L7_PROXY_PORT,
    "l7_proxy_unit": L7_PROXY_UNIT,
    "haproxy_bin": HAPROXY_BIN,
}
