# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative routes and policy-routing rules, reconciled over netlink.

The package, in the order data flows through it:

* ``names``: every name table (protocols, tables and iproute2's rt_tables
  files, scopes, route types, rule actions);
* ``family``: the address family (prefix and address parsing); IPv4 today,
  IPv6 later as another instance, not a copy;
* ``fields``: checks of single option values shared by routes and rules;
* ``routes`` / ``rules``: the normal forms: normalise the user's spec, parse a
  kernel message into the same form, format one line, identity key and match,
  and the entry in the modules' input schema;
* ``ownership``: owned vs foreign (by protocol) and the routes the endpoint
  module owns;
* ``reconcile``: one plan / apply / verify skeleton for both kinds, with the
  differences supplied by a kind object, returning the result contract;
* ``netlink``: the only pyroute2 user of the package (raw rtmsg/fibmsg).

Everything but ``netlink`` is pure and unit-tested without a kernel.
"""
