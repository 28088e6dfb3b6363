# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One plan / apply / verify skeleton for routes and rules.

* plan: wanted entries against the kernel's (in dump order). Owned entries
  with a wanted identity are kept, replaced or removed; a foreign entry there
  is a conflict, and every conflict fails the run before any write; purge
  removes the other owned entries in scope.
* apply, make before break: every install first, removals after, so traffic
  always has a route (or rule); a failure names what was already applied.
* verify: read the kernel again and plan again; anything left to do is an
  error (a concurrent writer, a kernel that matched another duplicate).
* result: ``_result.reconciled`` (or ``_result.gathered``), with before/after
  as entries of the module's input schema.

What differs between routes and rules (identity, match, netlink calls, errno
hints, messages, headers) comes from a kind object: ``RouteKind`` or
``RuleKind``. Both take the address family, so IPv6 would be a new family
object, not another copy of this skeleton.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
from collections import namedtuple

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import ROUTE_PROTOCOL
from ansible_collections.palisade.ebpf.plugins.module_utils._result import exit_reconciled, gathered, reconciled
from ansible_collections.palisade.ebpf.plugins.module_utils._routing import names as nm
from ansible_collections.palisade.ebpf.plugins.module_utils._routing import routes as rt
from ansible_collections.palisade.ebpf.plugins.module_utils._routing import rules as ru
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import NetlinkFailure, RoutingError
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.family import IPV4
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.netlink import (
    HAS_PYROUTE2,
    PYROUTE2_IMPORT_ERROR,
    PYROUTE2_REQUIREMENT,
    NetlinkBackend,
)
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.ownership import (
    is_owned,
    mark_delegated,
    reported,
    validate_protocol,
)

# op: "add" (nothing owned under the identity) or "replace" (an owned entry
# with other attributes, ``old``, is there).
Install = namedtuple("Install", "op entry old")
# install/remove in apply order; before/after: the owned entries in scope,
# sorted; warnings: foreign entries left alone by state=absent.
Plan = namedtuple("Plan", "install remove warnings before after")


# ---------------------------------------------------------------------------
# Kinds
# ---------------------------------------------------------------------------


class RouteKind(object):
    """Routes: identity (table, dst, tos, metric), replaced in place with
    NLM_F_REPLACE; the scope is a set of tables (None: every table)."""

    noun = "route"
    nouns = "routes"
    replaces_in_place = True
    gone_errno = errno.ESRCH
    # errno -> what an operator should check.
    hints = {
        errno.ENETUNREACH: "the gateway is not reachable through a link route (in this table or main); "
                           "install the link route first, or set onlink: true if the gateway is on dev's link",
        errno.ENETDOWN: "the interface is down",
        errno.ENODEV: "the interface disappeared",
        errno.EEXIST: "a route with this key appeared meanwhile (another writer?); re-run to re-plan",
        errno.EINVAL: "the kernel rejected the combination of type, scope, gateway, dev and src",
        errno.EPERM: "changing routes needs CAP_NET_ADMIN (run as root / with become)",
        errno.ESRCH: "the route was already gone",
    }

    def __init__(self, table_names=None, tables=None, family=IPV4):
        self.names = table_names if table_names is not None else nm.WELL_KNOWN_TABLES
        self.tables = None if tables is None else sorted(set(tables))
        self.family = family
        self._oifs = {}

    def key(self, route):
        return rt.route_key(route)

    def matches(self, want, have):
        return rt.route_matches(want, have)

    @staticmethod
    def keep(matching):
        # The first route under a key is the one the kernel uses; others only
        # exist through a manual 'ip route append ... proto N'.
        return matching[0]

    def install_order(self, item):
        # Routes without a gateway first: a gateway route needs the link route
        # that makes its gateway reachable, which may be in the same list.
        return 1 if item.entry["gateway"] else 0

    def format(self, route):
        return rt.format_route(route, self.names)

    def label(self, route):
        return self.format(route)

    def sort_key(self, route):
        return rt.route_sort_key(route, self.family)

    def entry(self, route):
        return rt.route_entry(route, self.names)

    def in_scope(self, route):
        return self.tables is None or route["table"] in self.tables

    def read(self, backend, links=None):
        """The kernel's routes in scope, dump order; endpoint routes marked delegated."""
        links = links if links is not None else backend.links()
        self._oifs = dict((info["name"], index) for index, info in links.items())
        ifnames = dict((index, info["name"]) for index, info in links.items())
        parsed = [rt.parse_route_msg(msg, ifnames, self.family) for msg in backend.dump_routes()]
        routes = mark_delegated([r for r in parsed if r is not None], links)
        return [r for r in routes if self.in_scope(r)]

    def install(self, backend, item, protocol):
        route = item.entry
        backend.add_route(route, protocol, self._oifs.get(route["dev"]), replace=item.op == "replace")

    def remove(self, backend, route, protocol):
        backend.delete_route(route, protocol, self._oifs.get(route["dev"]))

    @staticmethod
    def install_verb(op):
        return "replace the existing route with" if op == "replace" else "add route"

    delete_verb = "delete route"

    def conflict(self, want, other, protocol):
        return (
            "%s: the kernel already has %s with protocol %s (this collection owns protocol %d); "
            "refusing to overwrite it. Remove it, or give the wanted route another metric or table."
            % (self.format(want), self.format(other), nm.protocol_label(other["protocol"]), protocol)
        )

    def left_alone(self, route, protocol):
        return ("left %s alone: it has protocol %s, not %d, so it is not managed by this collection"
                % (self.format(route), nm.protocol_label(route["protocol"]), protocol))

    def header(self, protocol):
        if self.tables is None:
            return "owned routes (protocol %d)" % protocol
        if self.tables:
            return "owned routes (protocol %d) in table %s" % (
                protocol, ", ".join(nm.table_label(t, self.names) for t in self.tables))
        return "owned routes (protocol %d): no table in scope" % protocol


class RuleKind(object):
    """Rules: identity priority; the kernel has no in-place replace, so a
    changed rule is added next to the old one, which is deleted afterwards."""

    noun = "rule"
    nouns = "rules"
    replaces_in_place = False
    gone_errno = errno.ENOENT
    hints = {
        errno.EEXIST: "an identical rule appeared meanwhile (another writer?); re-run to re-plan",
        errno.EINVAL: "the kernel rejected the combination of fields",
        errno.EPERM: "changing rules needs CAP_NET_ADMIN (run as root / with become)",
        errno.ENOENT: "the rule was already gone",
        errno.EAFNOSUPPORT: "policy routing is not available (kernel without CONFIG_IP_MULTIPLE_TABLES)",
    }

    def __init__(self, table_names=None, family=IPV4):
        self.names = table_names if table_names is not None else nm.WELL_KNOWN_TABLES
        self.family = family

    def key(self, rule):
        return ru.rule_key(rule)

    def matches(self, want, have):
        return ru.rule_matches(want, have)

    @staticmethod
    def keep(matching):
        # Keep the last equal rule and delete the others front to back: the
        # kernel deletes the first rule matching the attributes given, and
        # every rule before the one being deleted is then either already gone
        # or not ours (skipped thanks to FRA_PROTOCOL).
        return matching[-1]

    def install_order(self, item):
        return 0

    def format(self, rule):
        return ru.format_rule(rule, self.names)

    def label(self, rule):
        return "'%s'" % self.format(rule)

    def sort_key(self, rule):
        return ru.rule_sort_key(rule)

    def entry(self, rule):
        return ru.rule_entry(rule, self.names)

    def read(self, backend):
        parsed = (ru.parse_rule_msg(msg, self.family) for msg in backend.dump_rules())
        return [rule for rule in parsed if rule is not None]

    def install(self, backend, item, protocol):
        backend.add_rule(item.entry, protocol)

    def remove(self, backend, rule, protocol):
        backend.delete_rule(rule, protocol)

    @staticmethod
    def install_verb(op):
        return "add rule"

    delete_verb = "delete rule"

    def conflict(self, want, other, protocol):
        return (
            "priority %d: the kernel already has rule '%s' with protocol %s (this collection owns protocol %d); "
            "refusing to add '%s' next to it. Remove that rule, or use another priority."
            % (want["priority"], self.format(other), nm.protocol_label(other["protocol"]), protocol, self.format(want))
        )

    def left_alone(self, rule, protocol):
        return ("left rule '%s' alone: it has protocol %s, not %d, so it is not managed by this collection"
                % (self.format(rule), nm.protocol_label(rule["protocol"]), protocol))

    def header(self, protocol):
        return "owned %s rules (protocol %d)" % (self.family.name, protocol)


# ---------------------------------------------------------------------------
# The skeleton
# ---------------------------------------------------------------------------


def plan(kind, wanted, current, state="present", purge=False, protocol=ROUTE_PROTOCOL):
    """Diff wanted (normalised) entries against ``current``, the kernel's
    entries in scope in dump order (the order matters for several entries
    under one identity: the kernel replaces and deletes the first match).
    Raises RoutingError on conflicts with entries that are not ours."""
    by_key = {}
    for index, entry in enumerate(current):
        by_key.setdefault(kind.key(entry), []).append(index)

    install, remove_idx, warnings, conflicts = [], set(), [], []
    handled = set()
    for want in wanted:
        key = kind.key(want)
        handled.add(key)
        existing = by_key.get(key, [])
        owned = [i for i in existing if is_owned(current[i], protocol)]
        foreign = [i for i in existing if not is_owned(current[i], protocol)]
        if state == "absent":
            remove_idx.update(owned)
            warnings.extend(kind.left_alone(current[i], protocol) for i in foreign)
            continue
        if foreign:
            conflicts.append(kind.conflict(want, current[foreign[0]], protocol))
            continue
        if not owned:
            install.append(Install("add", want, None))
            continue
        matching = [i for i in owned if kind.matches(want, current[i])]
        if matching:
            keep = kind.keep(matching)
            remove_idx.update(i for i in owned if i != keep)
        else:
            install.append(Install("replace", want, current[owned[0]]))
            # In place, the replace rewrites the first owned entry; otherwise
            # every old one goes once the new one is there.
            remove_idx.update(owned[1:] if kind.replaces_in_place else owned)
    if conflicts:
        raise RoutingError("%s conflict, nothing was changed:\n  %s" % (kind.noun, "\n  ".join(conflicts)))

    if purge:
        for index, entry in enumerate(current):
            if reported(entry, protocol) and (state == "absent" or kind.key(entry) not in handled):
                remove_idx.add(index)

    install.sort(key=kind.install_order)
    remove = [current[i] for i in sorted(remove_idx)]  # dump order: front-most match first

    before = [e for e in current if reported(e, protocol)]
    gone = set(id(e) for e in remove)
    if kind.replaces_in_place:
        gone.update(id(item.old) for item in install if item.old is not None)
    after = [e for e in before if id(e) not in gone] + [item.entry for item in install]
    return Plan(install, remove, warnings, sorted(before, key=kind.sort_key), sorted(after, key=kind.sort_key))


def change_lines(kind, planned):
    """The writes of a plan, in order: '+ ' adds, '~ ' replaces in place, '- ' removes."""
    lines = []
    for item in planned.install:
        sign = "~" if item.op == "replace" and kind.replaces_in_place else "+"
        lines.append("%s %s" % (sign, kind.format(item.entry)))
    lines.extend("- %s" % kind.format(entry) for entry in planned.remove)
    return lines


def _failure(verb, label, exc, hints, done):
    hint = hints.get(getattr(exc, "code", None))
    message = "failed to %s %s: %s" % (verb, label, exc)
    if hint:
        message += " (%s)" % hint
    applied = ["%s %s" % (what, ", ".join(items)) for what, items in done if items]
    message += ". Already applied: %s." % ("; ".join(applied) if applied else "nothing")
    message += " The next run picks up from the kernel's state."
    return RoutingError(message)


def apply(kind, backend, planned, protocol):
    """Installs first, removals after; a refusal names what was already done."""
    added, replaced, removed = [], [], []
    done = (("added", added), ("replaced", replaced), ("removed", removed))
    for item in planned.install:
        try:
            kind.install(backend, item, protocol)
        except NetlinkFailure as exc:
            raise _failure(kind.install_verb(item.op), kind.label(item.entry), exc, kind.hints, done)
        (replaced if item.op == "replace" else added).append(kind.format(item.entry))
    for entry in planned.remove:
        try:
            kind.remove(backend, entry, protocol)
        except NetlinkFailure as exc:
            if exc.code != kind.gone_errno:  # already gone is what we wanted
                raise _failure(kind.delete_verb, kind.label(entry), exc, kind.hints, done)
        removed.append(kind.format(entry))


def verify(kind, backend, wanted, state, purge, protocol):
    """Plan again against the kernel: nothing may be left. Returns the owned
    entries in scope as read back."""
    again = plan(kind, wanted, kind.read(backend), state, purge, protocol)
    leftover = [kind.label(item.entry) for item in again.install] + [kind.label(e) for e in again.remove]
    if leftover:
        raise RoutingError(
            "%s were written but the kernel still differs from the wanted state for: %s "
            "(another process changing %s at the same time?)" % (kind.nouns, "; ".join(leftover), kind.nouns)
        )
    return again.before


def _entries_and_lines(kind, normal_forms, lines):
    entries = []
    for item in normal_forms:
        entry = kind.entry(item)
        lines[id(entry)] = kind.format(item)
        entries.append(entry)
    return entries


def reconcile(kind, backend, wanted, state="present", purge=False, protocol=ROUTE_PROTOCOL, check_mode=False,
              current=None):
    """Read (unless ``current`` is given), plan, apply and verify unless in
    check mode; the module result."""
    if current is None:
        current = kind.read(backend)
    planned = plan(kind, wanted, current, state, purge, protocol)
    changes = change_lines(kind, planned)
    after = planned.after
    if changes and not check_mode:
        apply(kind, backend, planned, protocol)
        after = verify(kind, backend, wanted, state, purge, protocol)
    # The --diff lines come from the normal forms, one per entry.
    lines = {}
    before_entries = _entries_and_lines(kind, planned.before, lines)
    after_entries = _entries_and_lines(kind, after, lines)
    return reconciled(bool(changes), before_entries, after_entries, changes, kind.header(protocol),
                      render=lambda entry: lines[id(entry)], warnings=planned.warnings)


def gather(kind, backend, protocol=ROUTE_PROTOCOL):
    """``state: gathered``: the owned entries in scope, as entries; nothing written."""
    owned = sorted((e for e in kind.read(backend) if reported(e, protocol)), key=kind.sort_key)
    return gathered([kind.entry(e) for e in owned])


# ---------------------------------------------------------------------------
# Entry points of the modules
# ---------------------------------------------------------------------------


def _refuse_gathered_with(given, what):
    if given:
        raise RoutingError("state=gathered only reads the owned %s: leave %s empty and purge false" % (what, what))


def reconcile_routes(backend, routes, state="present", purge=False, protocol=ROUTE_PROTOCOL, tables=None,
                     check_mode=False, table_names=None, family=IPV4):
    """palisade.ebpf.ip_route: make the kernel's routes match ``routes`` (user
    entries), or with state=gathered report the owned routes of ``tables``
    (every table when empty)."""
    protocol = validate_protocol(protocol)
    names = table_names if table_names is not None else nm.WELL_KNOWN_TABLES
    extra_tables = [nm.parse_table(t, names, "tables[%d]" % i) for i, t in enumerate(tables or [])]
    if state == "gathered":
        _refuse_gathered_with(routes or purge, "routes")
        return gather(RouteKind(names, extra_tables or None, family), backend, protocol)

    wanted = rt.normalize_routes(routes, state, names, family)
    links = backend.links()
    if state == "present":
        rt.check_routes_against_host(wanted, links, backend.addresses(), family)
    kind = RouteKind(names, set(extra_tables) | set(r["table"] for r in wanted), family)
    return reconcile(kind, backend, wanted, state, purge, protocol, check_mode, current=kind.read(backend, links))


def reconcile_rules(backend, rules, state="present", purge=False, protocol=ROUTE_PROTOCOL, check_mode=False,
                    table_names=None, family=IPV4):
    """palisade.ebpf.ip_rule: make the kernel's rules match ``rules`` (user
    entries), or with state=gathered report the owned rules."""
    protocol = validate_protocol(protocol)
    names = table_names if table_names is not None else nm.WELL_KNOWN_TABLES
    kind = RuleKind(names, family)
    if state == "gathered":
        _refuse_gathered_with(rules or purge, "rules")
        return gather(kind, backend, protocol)
    wanted = ru.normalize_rules(rules, state, names, family)
    return reconcile(kind, backend, wanted, state, purge, protocol, check_mode)


def run_module(module, reconcile, entries, **options):
    """The body of palisade.ebpf.ip_route and ip_rule: ``reconcile``
    (reconcile_routes or reconcile_rules) through one netlink socket, with
    the module's common options; exits with the result contract."""
    if not HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib(PYROUTE2_REQUIREMENT), exception=str(PYROUTE2_IMPORT_ERROR))
    params = module.params
    try:
        with NetlinkBackend() as backend:
            result = reconcile(backend, entries, state=params["state"], purge=params["purge"],
                               protocol=params["protocol"], check_mode=module.check_mode,
                               table_names=nm.load_table_names(), **options)
    except RoutingError as exc:
        module.fail_json(msg=str(exc))
    exit_reconciled(module, result)
