# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The address family routes and rules are written in.

Normal forms, parsing and the netlink backend take the family as a
parameter, so IPv6 would be one more instance here rather than a copy of the
code. Only IPv4 exists today.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import RoutingError

AF_INET = 2


class AddressFamily(object):
    """One address family: its netlink number and how its prefixes read."""

    def __init__(self, name, number, version):
        self.name = name          # "IPv4", as messages say it
        self.number = number      # rtm_family / frh.family
        self.version = version    # ipaddress' version
        self.bits = 32 if version == 4 else 128
        self.any_address = "0.0.0.0" if version == 4 else "::"
        self.any_prefix = "%s/0" % self.any_address

    def address(self, value, where):
        """One address, as text in canonical form."""
        try:
            addr = ipaddress.ip_address(str(value).strip())
        except ValueError:
            raise RoutingError("%s: %r is not an IP address" % (where, value))
        if addr.version != self.version:
            raise RoutingError("%s: %s is IPv%d; only %s is supported" % (where, addr, addr.version, self.name))
        return str(addr)

    def prefix(self, value, where):
        """'10.1.2.0/24' -> '10.1.2.0/24'; a bare address is a host prefix; 'default' is the whole space."""
        text = str(value).strip()
        if text == "default":
            text = self.any_prefix
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            try:
                loose = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise RoutingError("%s: %r is not an %s prefix (%s)" % (where, value, self.name, exc))
            raise RoutingError("%s: %s has host bits set; the prefix is %s" % (where, text, loose))
        if net.version != self.version:
            raise RoutingError("%s: %s is IPv%d; only %s is supported" % (where, net, net.version, self.name))
        return str(net)

    def host_prefix(self, address):
        """'10.1.1.10' -> '10.1.1.10/32'."""
        return "%s/%d" % (address, self.bits)

    def sort_key(self, prefix):
        if prefix is None:
            return (0, 0)
        net = ipaddress.ip_network(prefix)
        return (int(net.network_address), net.prefixlen)


IPV4 = AddressFamily("IPv4", AF_INET, 4)
