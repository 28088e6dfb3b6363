# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every routing name table of the collection, and iproute2's rt_tables files.

Numbers are what netlink carries; names are what operators read and write.
Nothing else in the collection keeps its own copy of these tables.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import RoutingError

UINT32_MAX = 0xFFFFFFFF
RT_TABLE_UNSPEC = 0
RT_TABLE_COMPAT = 252  # rtm_table/frh.table value when the real id is > 255 (in the TABLE attribute)

# --- protocols (rtm_protocol, FRA_PROTOCOL) ---------------------------------

PROTOCOL_NAMES = {
    0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated", 9: "ra",
    10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp", 15: "ntk", 16: "dhcp",
    17: "mrouted", 18: "keepalived", 42: "babel", 99: "openr", 186: "bgp", 187: "isis",
    188: "ospf", 189: "rip", 192: "eigrp",
}
_PROTOCOL_NUMBERS = dict((v, k) for k, v in PROTOCOL_NAMES.items())
RTPROT_STATIC = 4


def protocol_name(proto):
    """'static' for 4; the number as text when it has no name."""
    return PROTOCOL_NAMES.get(proto, str(proto))


def protocol_number(value):
    """4 for 'static' or 4."""
    if isinstance(value, int):
        return value
    return _PROTOCOL_NUMBERS[value]


def protocol_label(proto):
    """'static (4)' where there is a name, else '201'."""
    name = PROTOCOL_NAMES.get(proto)
    return "%s (%d)" % (name, proto) if name else str(proto)


# --- tables -----------------------------------------------------------------

WELL_KNOWN_TABLES = {"default": 253, "main": 254, "local": 255}
MAIN_TABLE = WELL_KNOWN_TABLES["main"]
RT_TABLES_FILES = ("/usr/share/iproute2/rt_tables", "/etc/iproute2/rt_tables")
RT_TABLES_DIRS = ("/usr/share/iproute2/rt_tables.d", "/etc/iproute2/rt_tables.d")


def parse_rt_tables(text):
    """Parse one rt_tables file ('<id> <name>' lines, '#' comments) into {name: id}."""
    names = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        try:
            table_id = int(fields[0], 0)
        except ValueError:
            continue
        names[fields[1]] = table_id
    return names


def load_table_names():
    """Table names of this host: the kernel's well-known ones plus iproute2's files."""
    names = dict(WELL_KNOWN_TABLES)
    paths = list(RT_TABLES_FILES)
    for directory in RT_TABLES_DIRS:
        if os.path.isdir(directory):
            paths.extend(os.path.join(directory, f) for f in sorted(os.listdir(directory)) if f.endswith(".conf"))
    for path in paths:
        try:
            with open(path) as handle:
                names.update(parse_rt_tables(handle.read()))
        except (IOError, OSError):
            continue  # a missing or unreadable file just contributes no names
    return names


def parse_table(value, table_names=None, where="table"):
    """A table given as number, numeric string or name -> its id (int)."""
    names = table_names if table_names is not None else WELL_KNOWN_TABLES
    if value is None or value == "":
        raise RoutingError("%s: a routing table is required" % where)
    if isinstance(value, bool):
        raise RoutingError("%s: %r is not a routing table" % (where, value))
    if isinstance(value, int):
        table_id = value
    else:
        text = str(value).strip()
        if text in names:
            table_id = names[text]
        else:
            try:
                table_id = int(text, 0)
            except ValueError:
                raise RoutingError(
                    "%s: unknown routing table %r (use a number, or one of: %s)"
                    % (where, text, ", ".join(sorted(names)))
                )
    if table_id in (RT_TABLE_UNSPEC, RT_TABLE_COMPAT) or not 0 < table_id <= UINT32_MAX:
        raise RoutingError("%s: table %d is reserved or out of range (1-%d, not 252)" % (where, table_id, UINT32_MAX))
    return table_id


def table_label(table_id, table_names=None):
    """'main' for 254, '2004' for an unnamed table."""
    names = table_names if table_names is not None else WELL_KNOWN_TABLES
    for name in sorted(names):
        if names[name] == table_id:
            return name
    return str(table_id)


def table_value(table_id, table_names=None):
    """A table as the modules take it: its name where it has one, else the number."""
    label = table_label(table_id, table_names)
    return table_id if label == str(table_id) else label


# --- scopes -----------------------------------------------------------------

SCOPES = {"universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
_SCOPE_NAMES = dict((v, k) for k, v in SCOPES.items())


def scope_name(code):
    return _SCOPE_NAMES.get(code, str(code))


# --- route types ------------------------------------------------------------

# The types the modules manage; the kernel knows more (see ROUTE_TYPE_NAMES).
ROUTE_TYPES = {"unicast": 1, "local": 2, "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9}
ROUTE_TYPE_NAMES = {
    0: "unspec", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast",
    6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat", 11: "xresolve",
}
_ROUTE_TYPE_CODES = dict((v, k) for k, v in ROUTE_TYPE_NAMES.items())
# Types that never forward to a next hop: no gateway, no device, no source.
NEXTHOPLESS_TYPES = ("blackhole", "unreachable", "prohibit", "throw")


def route_type_name(code):
    return ROUTE_TYPE_NAMES.get(code, "type-%s" % code)


def route_type_code(name):
    """The number of any type the kernel reports (0 for one it does not know)."""
    return _ROUTE_TYPE_CODES.get(name, 0)


# --- rule actions -----------------------------------------------------------

RULE_ACTIONS = {"to_tbl": 1, "goto": 2, "nop": 3, "blackhole": 6, "unreachable": 7, "prohibit": 8}
_RULE_ACTION_NAMES = dict((v, k) for k, v in RULE_ACTIONS.items())
MANAGED_RULE_ACTIONS = ("to_tbl", "blackhole", "unreachable", "prohibit")


def rule_action_name(code):
    return _RULE_ACTION_NAMES.get(code, "action-%s" % code)
