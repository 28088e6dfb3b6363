# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The L7 redirect's socket steering: an SK_LOOKUP program attached to the
host's network namespace through a BPF link, pinned under the host's bpffs
directory (``links/steer_to_proxy``) so it outlives the module's process.

Want / have / diff over one object: with the L7 redirect on, a link in this
network namespace running this rendering's ``steer_to_proxy``; off, no link.
A program change swaps the link's program atomically (BPF_LINK_UPDATE), so
steering never stops. A pin left by a namespace that is gone (the kernel
marks such a link defunct) is replaced.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes as ct
import errno
import os

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import bpfsys
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.errors import (
    DatapathError,
    missing_kernel_feature,
)

PROGRAM = "steer_to_proxy"
BPF_SK_LOOKUP = 36  # enum bpf_attach_type


class LinkInfo(ct.Structure):
    # struct bpf_link_info, up to its netns member (the union is 8-aligned)
    _fields_ = [
        ("type", ct.c_uint32),
        ("id", ct.c_uint32),
        ("prog_id", ct.c_uint32),
        ("pad", ct.c_uint32),
        ("netns_ino", ct.c_uint32),
        ("attach_type", ct.c_uint32),
        ("rest", ct.c_uint8 * 48),
    ]


def link_pin(bpffs_dir):
    return os.path.join(bpffs_dir, "links", PROGRAM)


def _lib():
    handle = bpfsys.lib()
    if not getattr(handle, "_palisade_links", False):
        handle.bpf_link_create.restype = ct.c_int
        handle.bpf_link_create.argtypes = [ct.c_int, ct.c_int, ct.c_int, ct.c_void_p]
        handle.bpf_link_update.restype = ct.c_int
        handle.bpf_link_update.argtypes = [ct.c_int, ct.c_int, ct.c_void_p]
        handle._palisade_links = True
    return handle


def link_info(fd):
    info = LinkInfo()
    size = ct.c_uint32(ct.sizeof(info))
    ret = bpfsys.lib().bpf_obj_get_info_by_fd(fd, ct.byref(info), ct.byref(size))
    if ret < 0:
        raise DatapathError("cannot read the socket-steering link: %s" % os.strerror(-ret))
    return info


def this_netns_inode():
    return os.stat("/proc/self/ns/net").st_ino


class Steering(object):
    """Plan on construction (``line`` is None when nothing differs); apply().
    ``present``: a link is pinned (whatever its state)."""

    def __init__(self, bpffs_dir, wanted, want_prog_id, digest):
        self.path = link_pin(bpffs_dir)
        self.wanted = wanted
        self.kind = None
        self.line = None
        fd = bpfsys.obj_get(self.path)
        self.present = fd is not None
        have = None
        if fd is not None:
            try:
                have = link_info(fd)
            finally:
                bpfsys.close(fd)
        where = "sk_lookup of this network namespace"
        if not wanted:
            if fd is not None:
                self.kind = "detach"
                self.line = "- detach %s: %s" % (where, PROGRAM)
            return
        if have is None:
            self.kind = "attach"
            self.line = "+ attach %s: %s %s" % (where, PROGRAM, digest)
        elif have.netns_ino != this_netns_inode():
            self.kind = "recreate"
            self.line = "~ replace %s: the pinned link belongs to another (or a removed) namespace" % where
        elif want_prog_id is None or have.prog_id != want_prog_id:
            self.kind = "update"
            self.line = "~ replace %s: program %d -> %s %s" % (where, have.prog_id, PROGRAM, digest)

    def apply(self, prog_fd):
        if self.kind == "detach":
            os.unlink(self.path)
            return
        if self.kind == "update":
            fd = bpfsys.obj_get(self.path)
            try:
                ret = _lib().bpf_link_update(fd, prog_fd, None)
            finally:
                bpfsys.close(fd)
            if ret < 0:
                raise DatapathError("cannot swap the socket-steering program: %s" % os.strerror(-ret))
            return
        if self.kind == "recreate":
            os.unlink(self.path)
        netns = os.open("/proc/self/ns/net", os.O_RDONLY)
        try:
            fd = _lib().bpf_link_create(prog_fd, netns, BPF_SK_LOOKUP, None)
        finally:
            os.close(netns)
        if fd < 0:
            if -fd in (errno.EINVAL, errno.EOPNOTSUPP):
                raise missing_kernel_feature("BPF_PROG_TYPE_SK_LOOKUP", "Linux 5.9 or later")
            raise DatapathError("cannot attach the socket-steering program: %s" % os.strerror(-fd))
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            bpfsys.obj_pin(fd, self.path)
        finally:
            bpfsys.close(fd)
