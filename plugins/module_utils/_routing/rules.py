# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The normal form of a policy-routing rule: from the user's spec, from a
kernel message, to one line of text, and back to the module's input schema.

    {'priority': int, 'action': str, 'table': int|None, 'fwmark': int|None,
     'fwmask': int|None, 'src': prefix|None, 'dst': prefix|None,
     'iif': str|None, 'oif': str|None, 'invert': bool, 'tos': int,
     'extras': {name: value}, 'protocol': int|None}

Identity: priority. The kernel allows several rules per priority; the
collection wants exactly one owned rule there.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils._routing import fields
from ansible_collections.palisade.ebpf.plugins.module_utils._routing import names as nm
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import RoutingError
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.family import IPV4

FIB_RULE_INVERT = 0x2

RULE_OPTIONS = ("priority", "action", "table", "fwmark", "fwmask", "src", "dst", "iif", "oif")

# Rule attributes the module does not manage. A kernel rule carrying one is
# reported with it and never equals a wanted rule (which has none).
RULE_EXTRA_ATTRS = (
    ("FRA_GOTO", "goto"),
    ("FRA_FLOW", "realms"),
    ("FRA_TUN_ID", "tun_id"),
    ("FRA_L3MDEV", "l3mdev"),
    ("FRA_IP_PROTO", "ipproto"),
    ("FRA_UID_RANGE", "uidrange"),
    ("FRA_SPORT_RANGE", "sport"),
    ("FRA_DPORT_RANGE", "dport"),
    ("FRA_SUPPRESS_PREFIXLEN", "suppress_prefixlength"),
    ("FRA_SUPPRESS_IFGROUP", "suppress_ifgroup"),
)
# The kernel reports these two with an all-ones value when unset.
_RULE_EXTRA_UNSET = {"suppress_prefixlength": nm.UINT32_MAX, "suppress_ifgroup": nm.UINT32_MAX}

_RULE_COMPARED = ("action", "table", "fwmark", "fwmask", "src", "dst", "iif", "oif", "invert", "tos", "extras")


def rule_key(rule):
    return rule["priority"]


def _parse_mark(value, where):
    """fwmark as int, '0x200', '512' or '0x200/0xf00' -> (mark, mask|None)."""
    if isinstance(value, str) and "/" in value:
        mark_text, mask_text = value.split("/", 1)
        return fields.uint(mark_text.strip(), where), fields.uint(mask_text.strip(), where)
    return fields.uint(value, where), None


def normalize_rule(spec, table_names=None, where="rule", state="present", family=IPV4):
    if not isinstance(spec, dict):
        raise RoutingError("%s: expected a dict, got %r" % (where, spec))
    fields.reject_unknown_keys(spec, RULE_OPTIONS, where)
    if spec.get("priority") is None:
        raise RoutingError("%s: priority is required (it identifies the rule)" % where)
    rule = {
        "priority": fields.uint(spec["priority"], "%s.priority" % where),
        "action": "to_tbl", "table": None, "fwmark": None, "fwmask": None, "src": None, "dst": None,
        "iif": None, "oif": None, "invert": False, "tos": 0, "extras": {}, "protocol": None,
    }
    if state == "absent":
        return rule
    name = "%s (priority %d)" % (where, rule["priority"])

    action = spec.get("action") or "to_tbl"
    if action not in nm.MANAGED_RULE_ACTIONS:
        raise RoutingError("%s.action: %r is not one of %s" % (where, action, ", ".join(nm.MANAGED_RULE_ACTIONS)))
    rule["action"] = action
    if action == "to_tbl":
        if spec.get("table") in (None, ""):
            raise RoutingError("%s: table is required with action to_tbl (the table to look up)" % name)
        rule["table"] = nm.parse_table(spec["table"], table_names, "%s.table" % where)
    elif spec.get("table") not in (None, ""):
        raise RoutingError("%s: table only applies to action to_tbl, not %s" % (name, action))

    if spec.get("fwmark") not in (None, ""):
        mark, mask = _parse_mark(spec["fwmark"], "%s.fwmark" % where)
        if spec.get("fwmask") not in (None, ""):
            given_mask = fields.uint(spec["fwmask"], "%s.fwmask" % where)
            if mask is not None and mask != given_mask:
                raise RoutingError("%s: fwmark %s and fwmask %s give two different masks" % (name, spec["fwmark"], spec["fwmask"]))
            mask = given_mask
        if mask is None:
            mask = nm.UINT32_MAX  # what the kernel stores for a mark without a mask
        if mask == 0:
            raise RoutingError("%s: fwmask 0 matches every packet; leave fwmark out instead" % name)
        if mark & ~mask & nm.UINT32_MAX:
            raise RoutingError("%s: fwmark 0x%x has bits outside fwmask 0x%x, so it can never match" % (name, mark, mask))
        if mark == 0 and spec.get("fwmask") in (None, "") and "/" not in str(spec["fwmark"]):
            raise RoutingError("%s: fwmark 0 needs an explicit fwmask (the kernel reads a bare 0 as 'no mark match')" % name)
        rule["fwmark"], rule["fwmask"] = mark, mask
    elif spec.get("fwmask") not in (None, ""):
        raise RoutingError("%s: fwmask needs fwmark" % name)

    for field in ("src", "dst"):
        if spec.get(field):
            prefix = family.prefix(spec[field], "%s.%s" % (where, field))
            rule[field] = None if prefix == family.any_prefix else prefix  # /0 is 'from all'
    for field in ("iif", "oif"):
        if spec.get(field):
            rule[field] = fields.ifname(spec[field], "%s.%s" % (where, field))
    return rule


def normalize_rules(specs, state="present", table_names=None, family=IPV4):
    rules = []
    seen = {}
    for index, spec in enumerate(specs or []):
        where = "rules[%d]" % index
        rule = normalize_rule(spec, table_names, where, state, family)
        if rule["priority"] in seen:
            if state == "absent":
                continue
            raise RoutingError(
                "%s and %s both use priority %d; the priority identifies a rule, so only one can exist"
                % (seen[rule["priority"]], where, rule["priority"])
            )
        seen[rule["priority"]] = where
        rules.append(rule)
    return rules


def _range_text(value):
    if isinstance(value, dict):
        return "%s-%s" % (value.get("start"), value.get("end"))
    return str(value)


def parse_rule_msg(msg, family=IPV4):
    """One RTM_NEWRULE message (pyroute2 or a dict shaped like it) -> normalised rule."""
    if msg.get("family", family.number) != family.number:
        return None
    attrs = fields.attr_map(msg)
    action = nm.rule_action_name(msg.get("action"))
    mark, mask = attrs.get("FRA_FWMARK"), attrs.get("FRA_FWMASK")
    if mark is None and mask:  # 'fwmark 0/0xf00' is dumped as a mask alone
        mark = 0
    if mark is not None and mask is None:
        mask = nm.UINT32_MAX
    rule = {
        "priority": attrs.get("FRA_PRIORITY", 0) or 0,
        "action": action,
        "table": None,
        "fwmark": mark,
        "fwmask": mask if mark is not None else None,
        "src": "%s/%d" % (attrs["FRA_SRC"], msg.get("src_len", 0)) if attrs.get("FRA_SRC") and msg.get("src_len") else None,
        "dst": "%s/%d" % (attrs["FRA_DST"], msg.get("dst_len", 0)) if attrs.get("FRA_DST") and msg.get("dst_len") else None,
        "iif": attrs.get("FRA_IIFNAME") or None,
        "oif": attrs.get("FRA_OIFNAME") or None,
        "invert": bool((msg.get("flags", 0) or 0) & FIB_RULE_INVERT),
        "tos": msg.get("tos", 0) or 0,
        "extras": {},
        "protocol": attrs.get("FRA_PROTOCOL", 0) or 0,
    }
    if action == "to_tbl":
        rule["table"] = attrs.get("FRA_TABLE", msg.get("table"))
    for attr, key in RULE_EXTRA_ATTRS:
        value = attrs.get(attr)
        if value is None or value == _RULE_EXTRA_UNSET.get(key):
            continue
        if attr.endswith("_RANGE"):
            value = _range_text(value)
        rule["extras"][key] = value
    return rule


def rule_matches(want, have):
    return all(want[field] == have[field] for field in _RULE_COMPARED)


def format_rule(rule, table_names=None):
    """One line, in ip-rule(8) style: '100: from all fwmark 0x200/0xf00 lookup 2004'."""
    words = ["%d:" % rule["priority"]]
    if rule.get("invert"):
        words.append("not")
    words.append("from %s" % (rule["src"] or "all"))
    if rule.get("dst"):
        words.append("to %s" % rule["dst"])
    if rule.get("tos"):
        words.append("tos 0x%02x" % rule["tos"])
    if rule.get("fwmark") is not None:
        if rule.get("fwmask") in (None, nm.UINT32_MAX):
            words.append("fwmark 0x%x" % rule["fwmark"])
        else:
            words.append("fwmark 0x%x/0x%x" % (rule["fwmark"], rule["fwmask"]))
    if rule.get("iif"):
        words.append("iif %s" % rule["iif"])
    if rule.get("oif"):
        words.append("oif %s" % rule["oif"])
    for key in sorted(rule.get("extras") or {}):
        words.append("%s %s" % (key, rule["extras"][key]))
    if rule["action"] == "to_tbl":
        words.append("lookup %s" % nm.table_label(rule["table"], table_names))
    else:
        words.append(rule["action"])
    return " ".join(words)


def rule_sort_key(rule):
    return (rule["priority"], format_rule(rule))


def rule_entry(rule, table_names=None):
    """A normalised rule in ip_rule's input schema (what ``rules`` takes).

    Marks are hex text as in the examples. Owned rules made outside the
    module may carry what the module cannot set (``invert``, ``tos``,
    ``extras``); those are kept so nothing is hidden.
    """
    entry = {"priority": rule["priority"], "action": rule["action"]}
    if rule["action"] == "to_tbl":
        entry["table"] = nm.table_value(rule["table"], table_names)
    if rule.get("fwmark") is not None:
        entry["fwmark"] = "0x%x" % rule["fwmark"]
        entry["fwmask"] = "0x%x" % rule["fwmask"]
    for field in ("src", "dst", "iif", "oif"):
        if rule.get(field):
            entry[field] = rule[field]
    if rule.get("invert"):
        entry["invert"] = True
    if rule.get("tos"):
        entry["tos"] = rule["tos"]
    if rule.get("extras"):
        entry["extras"] = dict(rule["extras"])
    return entry
