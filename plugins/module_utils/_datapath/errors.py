# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Datapath errors, each with a one-line message that says what to do."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import platform


class DatapathError(Exception):
    """A failure the task reports as its message (one line, plus details)."""

    def __init__(self, message, details=None):
        self.details = details
        super(DatapathError, self).__init__(message)


class VerifierError(DatapathError):
    """The kernel's verifier (or the compiler) rejected the program."""


class MapFullError(DatapathError):
    pass


def missing_bcc():
    return DatapathError("bcc is not installed for this Python: install python3-bpfcc "
                         "(apt-get install python3-bpfcc) and run modules with /usr/bin/python3")


def missing_headers(detail=""):
    release = platform.release()
    return DatapathError(
        "kernel headers for %s are missing: install linux-headers-%s, or link the generic "
        "linux-headers-$(dpkg --print-architecture) to /lib/modules/%s/build as the collection's "
        "scripts/setup.sh does" % (release, release, release), details=detail)


def missing_bpffs(path):
    return DatapathError("%s is not on a bpf filesystem: mount it with 'mount -t bpf bpf /sys/fs/bpf'" % path)


def missing_kernel_feature(feature, config):
    return DatapathError("kernel %s lacks %s: use a kernel built with %s" % (platform.release(), feature, config))
