# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin access to the bpf() syscall through the libbpf that bcc links
(python3-bpfcc's libbcc.so resolves libbpf's symbols): pinned objects, map
entries, object info. Only ctypes and bcc; no tools are run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes as ct
import errno
import os

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.errors import DatapathError, missing_bcc

BPF_ANY = 0
BPF_OBJ_NAME_LEN = 16

_LIB = None


class BpfError(DatapathError):
    def __init__(self, message, err=0):
        self.errno = err
        super(BpfError, self).__init__(message)


def lib():
    """libbcc with libbpf's functions typed; a one-line error without bcc."""
    global _LIB
    if _LIB is not None:
        return _LIB
    try:
        from bcc import libbcc  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise missing_bcc()
    handle = libbcc.lib
    sigs = {
        "bpf_obj_pin": (ct.c_int, [ct.c_int, ct.c_char_p]),
        "bpf_obj_get": (ct.c_int, [ct.c_char_p]),
        "bpf_obj_get_info_by_fd": (ct.c_int, [ct.c_int, ct.c_void_p, ct.POINTER(ct.c_uint32)]),
        "bpf_map_lookup_elem": (ct.c_int, [ct.c_int, ct.c_void_p, ct.c_void_p]),
        "bpf_map_update_elem": (ct.c_int, [ct.c_int, ct.c_void_p, ct.c_void_p, ct.c_uint64]),
        "bpf_map_delete_elem": (ct.c_int, [ct.c_int, ct.c_void_p]),
        "bpf_map_get_next_key": (ct.c_int, [ct.c_int, ct.c_void_p, ct.c_void_p]),
        "bpf_map_lookup_batch": (ct.c_int, [ct.c_int, ct.c_void_p, ct.c_void_p, ct.c_void_p, ct.c_void_p,
                                            ct.POINTER(ct.c_uint32), ct.c_void_p]),
        "bpf_prog_get_fd_by_id": (ct.c_int, [ct.c_uint32]),
        "libbpf_num_possible_cpus": (ct.c_int, []),
    }
    for name, (restype, argtypes) in sigs.items():
        func = getattr(handle, name)
        func.restype = restype
        func.argtypes = argtypes
    _LIB = handle
    return handle


def _errno_of(ret):
    # libbpf 1.x returns -errno from every call (libbpf_err_errno).
    return -ret if ret < 0 else errno.EIO


def _check(ret, what):
    if ret < 0:
        err = _errno_of(ret)
        raise BpfError("%s: %s" % (what, os.strerror(err)), err)
    return ret


# --- pinned objects -----------------------------------------------------------
def obj_get(path):
    """fd of the object pinned at path, or None when there is none."""
    fd = lib().bpf_obj_get(path.encode("utf-8"))
    if fd < 0:
        err = _errno_of(fd)
        if err == errno.ENOENT or not os.path.exists(path):
            return None
        raise BpfError("cannot open pinned object %s: %s" % (path, os.strerror(err)), err)
    return fd


def obj_pin(fd, path):
    _check(lib().bpf_obj_pin(fd, path.encode("utf-8")), "cannot pin %s" % path)


def close(fd):
    if fd is not None and fd >= 0:
        os.close(fd)


def is_bpffs(path):
    """True when path lies on a mounted bpf filesystem."""
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    # statvfs has no f_type; compare with the bpffs root's filesystem id.
    try:
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split() for line in f]
    except IOError:
        return False
    real = os.path.realpath(path)
    best = None
    for fields in mounts:
        mount_point = fields[4]
        sep = fields.index("-")
        fstype = fields[sep + 1]
        if real == mount_point or real.startswith(mount_point.rstrip("/") + "/"):
            if best is None or len(mount_point) > len(best[0]):
                best = (mount_point, fstype)
    return bool(st) and best is not None and best[1] == "bpf"


# --- info ---------------------------------------------------------------------
class MapInfo(ct.Structure):
    _fields_ = [
        ("type", ct.c_uint32), ("id", ct.c_uint32), ("key_size", ct.c_uint32), ("value_size", ct.c_uint32),
        ("max_entries", ct.c_uint32), ("map_flags", ct.c_uint32), ("name", ct.c_char * BPF_OBJ_NAME_LEN),
    ]


class ProgInfo(ct.Structure):
    _fields_ = [
        ("type", ct.c_uint32), ("id", ct.c_uint32), ("tag", ct.c_uint8 * 8),
        ("jited_prog_len", ct.c_uint32), ("xlated_prog_len", ct.c_uint32),
        ("jited_prog_insns", ct.c_uint64), ("xlated_prog_insns", ct.c_uint64),
        ("load_time", ct.c_uint64), ("created_by_uid", ct.c_uint32), ("nr_map_ids", ct.c_uint32),
        ("map_ids", ct.c_uint64), ("name", ct.c_char * BPF_OBJ_NAME_LEN),
    ]


def map_info(fd):
    info = MapInfo()
    size = ct.c_uint32(ct.sizeof(info))
    _check(lib().bpf_obj_get_info_by_fd(fd, ct.byref(info), ct.byref(size)), "map info")
    return {
        "type": info.type, "id": info.id, "key_size": info.key_size, "value_size": info.value_size,
        "max_entries": info.max_entries, "flags": info.map_flags, "name": info.name.decode("utf-8", "replace"),
    }


def prog_info(fd):
    info = ProgInfo()
    size = ct.c_uint32(ct.sizeof(info))
    _check(lib().bpf_obj_get_info_by_fd(fd, ct.byref(info), ct.byref(size)), "program info")
    count = info.nr_map_ids
    ids = (ct.c_uint32 * max(count, 1))()
    info2 = ProgInfo()
    info2.nr_map_ids = count
    info2.map_ids = ct.addressof(ids)
    size = ct.c_uint32(ct.sizeof(info2))
    _check(lib().bpf_obj_get_info_by_fd(fd, ct.byref(info2), ct.byref(size)), "program info")
    return {
        "id": info.id, "type": info.type, "name": info.name.decode("utf-8", "replace"),
        "tag": "".join("%02x" % b for b in info.tag), "map_ids": sorted(ids[i] for i in range(min(count, info2.nr_map_ids))),
    }


def possible_cpus():
    return _check(lib().libbpf_num_possible_cpus(), "possible CPUs")


# --- map entries --------------------------------------------------------------
class Map(object):
    """A pinned map opened by path, with typed access."""

    def __init__(self, path, key_cls, value_cls, percpu=False):
        self.path = path
        self.key_cls = key_cls
        self.value_cls = value_cls
        self.percpu = percpu
        self.fd = obj_get(path)
        if self.fd is None:
            raise BpfError("map %s is not pinned" % path, errno.ENOENT)
        self.info = map_info(self.fd)
        self.ncpu = possible_cpus() if percpu else 1
        # Per-CPU values are rounded up to 8 bytes per CPU.
        self.value_stride = (ct.sizeof(value_cls) + 7) & ~7 if percpu else ct.sizeof(value_cls)

    @classmethod
    def open(cls, path, key_cls, value_cls, percpu=False):
        """The map, or None when nothing is pinned at path."""
        if not os.path.exists(path):
            return None
        return cls(path, key_cls, value_cls, percpu)

    def close(self):
        close(self.fd)
        self.fd = None

    def _value_buffer(self):
        return ct.create_string_buffer(self.value_stride * self.ncpu)

    def lookup(self, key):
        """Raw value bytes (all CPUs for per-CPU maps), or None."""
        buf = self._value_buffer()
        ret = lib().bpf_map_lookup_elem(self.fd, ct.byref(key), buf)
        if ret < 0:
            err = _errno_of(ret)
            if err == errno.ENOENT:
                return None
            raise BpfError("lookup in %s: %s" % (self.path, os.strerror(err)), err)
        return buf.raw

    def update(self, key, value, flags=BPF_ANY):
        ret = lib().bpf_map_update_elem(self.fd, ct.byref(key), ct.byref(value), flags)
        if ret < 0:
            err = _errno_of(ret)
            raise BpfError("update of %s: %s" % (self.path, os.strerror(err)), err)

    def delete(self, key):
        """True when deleted, False when the key was not there."""
        ret = lib().bpf_map_delete_elem(self.fd, ct.byref(key))
        if ret < 0:
            err = _errno_of(ret)
            if err == errno.ENOENT:
                return False
            raise BpfError("delete from %s: %s" % (self.path, os.strerror(err)), err)
        return True

    def items(self):
        """{key bytes: value bytes} of every entry (batched when the map type can)."""
        try:
            return self._items_batch()
        except BpfError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, getattr(errno, "ENOTSUPP", 524), 524):
                raise
        return self._items_iter()

    def _items_batch(self):
        out = {}
        ksize = ct.sizeof(self.key_cls)
        chunk = 4096
        keys = ct.create_string_buffer(ksize * chunk)
        values = ct.create_string_buffer(self.value_stride * self.ncpu * chunk)
        token_in = ct.create_string_buffer(max(ksize, 8))
        token_out = ct.create_string_buffer(max(ksize, 8))
        first = True
        while True:
            count = ct.c_uint32(chunk)
            ret = lib().bpf_map_lookup_batch(self.fd, None if first else token_in, token_out, keys, values,
                                             ct.byref(count), None)
            err = _errno_of(ret) if ret < 0 else 0
            if ret < 0 and err != errno.ENOENT:
                raise BpfError("batch lookup in %s: %s" % (self.path, os.strerror(err)), err)
            kraw, vraw = keys.raw, values.raw
            vsize = self.value_stride * self.ncpu
            for i in range(count.value):
                out[kraw[i * ksize:(i + 1) * ksize]] = vraw[i * vsize:(i + 1) * vsize]
            if ret < 0:  # ENOENT: that was the last batch
                return out
            ct.memmove(token_in, token_out, len(token_out.raw))
            first = False

    def _items_iter(self):
        out = {}
        key = self.key_cls()
        nxt = self.key_cls()
        prev = None
        while True:
            ret = lib().bpf_map_get_next_key(self.fd, None if prev is None else ct.byref(key), ct.byref(nxt))
            if ret < 0:
                err = _errno_of(ret)
                if err == errno.ENOENT:
                    return out
                raise BpfError("iterating %s: %s" % (self.path, os.strerror(err)), err)
            value = self.lookup(nxt)
            if value is not None:
                out[bytes(bytearray(nxt))] = value
            ct.memmove(ct.byref(key), ct.byref(nxt), ct.sizeof(key))
            prev = True

    def percpu_sum(self, raw, fields):
        """Sum named integer fields of a per-CPU value over the CPUs."""
        totals = dict((name, 0) for name in fields)
        for cpu in range(self.ncpu):
            value = self.value_cls.from_buffer_copy(raw[cpu * self.value_stride:cpu * self.value_stride + ct.sizeof(self.value_cls)])
            for name in fields:
                totals[name] += getattr(value, name)
        return totals
