# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two errors of the routing package."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class RoutingError(Exception):
    """A problem the operator has to act on; the message is shown as is."""


class NetlinkFailure(Exception):
    """A netlink request the kernel refused (errno + strerror), backend-neutral."""

    def __init__(self, code, message):
        super(NetlinkFailure, self).__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self):
        return "[Errno %s] %s" % (self.code, self.message)
