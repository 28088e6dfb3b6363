# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registration of the proxy's listening socket in the datapath's SOCKMAP.

The sk_lookup program picks the proxy listener from slot 0 of the
``proxy_sockets`` sockmap (docs: l7-redirect spike, experiment 3b). The
listener belongs to HAProxy, so this module borrows it: find the LISTEN
socket in this network namespace's /proc/net/tcp, a HAProxy process holding
its inode, duplicate the descriptor with pidfd_open + pidfd_getfd, and put it
in slot 0. A userspace lookup on a sockmap with 8-byte values returns the
socket's cookie, which is compared with the listener's SO_COOKIE so that an
unchanged registration is not rewritten. The sockmap drops a socket by itself
when it is closed (HAProxy stopped); a hitless reload keeps the same socket.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes as ct
import errno
import os
import platform
import socket
import struct

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import bpfsys, maps
from ansible_collections.palisade.ebpf.plugins.module_utils._l7proxy.runtime import L7ProxyError

SLOT_PROXY = 0
SO_COOKIE = 57
TCP_LISTEN = "0A"
# x86_64 and the generic table (arm64 etc.) share these numbers.
NR_PIDFD_OPEN = 434
NR_PIDFD_GETFD = 438


def pin_path(bpffs_dir):
    spec = maps.MAPS_BY_NAME.get("proxy_sockets")
    if spec is None:
        raise L7ProxyError("this collection's datapath defines no proxy_sockets map (maps.MAPS_BY_NAME)")
    return os.path.join(bpffs_dir, "maps", spec.pin_name({}))


def missing_pin(path):
    return L7ProxyError("the proxy socket map %s is not pinned: run palisade.ebpf.datapath on this host first" % path)


# --- finding the listener -------------------------------------------------------------
def _hex_addr(addr, port):
    return "%08X:%04X" % (struct.unpack("=I", socket.inet_aton(addr))[0], port)


def listener_inode(port, addresses=("127.0.0.1", "0.0.0.0"), proc_net="/proc/net/tcp"):
    """Inode of the TCP socket listening on addr:port in this network
    namespace (the first of addresses that has one), or None."""
    wanted = [_hex_addr(addr, port) for addr in addresses]
    found = {}
    try:
        with open(proc_net) as f:
            next(f)
            for line in f:
                fields = line.split()
                if len(fields) > 9 and fields[3] == TCP_LISTEN and fields[1] in wanted and fields[9] != "0":
                    found.setdefault(fields[1], int(fields[9]))
    except (IOError, OSError):
        return None
    for key in wanted:
        if key in found:
            return found[key]
    return None


def holder(inode, pids):
    """(pid, fd) of the first of pids with a descriptor on socket inode, or None."""
    target = "socket:[%d]" % inode
    for pid in pids:
        fd_dir = "/proc/%d/fd" % pid
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                if os.readlink(os.path.join(fd_dir, name)) == target:
                    return pid, int(name)
            except OSError:
                continue
    return None


# --- borrowing the descriptor ---------------------------------------------------------
_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        _LIBC = ct.CDLL(None, use_errno=True)
        _LIBC.syscall.restype = ct.c_long
    return _LIBC


def _syscall(number, *args):
    ret = _libc().syscall(ct.c_long(number), *[ct.c_long(a) for a in args])
    if ret < 0:
        err = ct.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def pidfd_open(pid):
    if hasattr(os, "pidfd_open"):
        return os.pidfd_open(pid)
    return _syscall(NR_PIDFD_OPEN, pid, 0)


def dup_from(pid, fd):
    """A descriptor of ours on pid's descriptor fd (pidfd_getfd, Linux 5.6+)."""
    if platform.machine() not in ("x86_64", "aarch64", "arm64", "riscv64", "loongarch64"):
        raise L7ProxyError("pidfd_getfd syscall number unknown on %s" % platform.machine())
    try:
        pidfd = pidfd_open(pid)
    except OSError as exc:
        raise L7ProxyError("pidfd_open(%d): %s" % (pid, exc.strerror))
    try:
        return _syscall(NR_PIDFD_GETFD, pidfd, fd, 0)
    except OSError as exc:
        raise L7ProxyError("pidfd_getfd(%d, %d): %s (Linux 5.6+ and ptrace rights on HAProxy needed)"
                           % (pid, fd, exc.strerror))
    finally:
        os.close(pidfd)


def socket_cookie(fd):
    """SO_COOKIE of the socket behind fd (the descriptor stays open)."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        return struct.unpack("=Q", sock.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0]
    finally:
        sock.close()  # close() never shuts the socket down: the listener lives on


# --- the sockmap --------------------------------------------------------------------------
def open_map(path):
    """fd of the pinned sockmap; L7ProxyError when it is not pinned."""
    if not os.path.exists(path):
        raise missing_pin(path)
    fd = bpfsys.obj_get(path)
    if fd is None:
        raise missing_pin(path)
    return fd


def slot_cookie(map_fd, slot=SLOT_PROXY):
    """Cookie of the socket in slot, or None when the slot is empty."""
    key = ct.c_uint32(slot)
    value = ct.c_uint64(0)
    ret = bpfsys.lib().bpf_map_lookup_elem(map_fd, ct.byref(key), ct.byref(value))
    if ret < 0:
        err = -ret
        if err == errno.ENOENT:
            return None
        raise L7ProxyError("lookup of slot %d in the proxy socket map: %s" % (slot, os.strerror(err)))
    return value.value


def set_slot(map_fd, sock_fd, slot=SLOT_PROXY):
    key = ct.c_uint32(slot)
    value = ct.c_uint64(sock_fd)
    ret = bpfsys.lib().bpf_map_update_elem(map_fd, ct.byref(key), ct.byref(value), bpfsys.BPF_ANY)
    if ret < 0:
        raise L7ProxyError("cannot put the proxy listener in slot %d of the proxy socket map: %s"
                           % (slot, os.strerror(-ret)))


def clear_slot(map_fd, slot=SLOT_PROXY):
    """True when an entry was removed."""
    key = ct.c_uint32(slot)
    ret = bpfsys.lib().bpf_map_delete_elem(map_fd, ct.byref(key))
    if ret < 0:
        if -ret == errno.ENOENT:
            return False
        raise L7ProxyError("cannot clear slot %d of the proxy socket map: %s" % (slot, os.strerror(-ret)))
    return True


class Listener(object):
    """The proxy's listening socket as found in this namespace."""

    def __init__(self, inode, pid, fd):
        self.inode = inode
        self.pid = pid
        self.fd = fd

    def borrow(self):
        return dup_from(self.pid, self.fd)


def find_listener(port, pids):
    """Listener on 127.0.0.1:port (or 0.0.0.0:port) held by one of pids, or None."""
    inode = listener_inode(port)
    if inode is None:
        return None
    found = holder(inode, pids)
    if found is None:
        return None
    return Listener(inode, found[0], found[1])


def reconcile(map_path, listener, check_mode):
    """Make slot 0 hold listener. Returns (changed, cookie)."""
    map_fd = open_map(map_path)
    try:
        current = slot_cookie(map_fd)
        sock_fd = listener.borrow()
        try:
            cookie = socket_cookie(sock_fd)
            if current == cookie:
                return False, cookie
            if not check_mode:
                set_slot(map_fd, sock_fd)
            return True, cookie
        finally:
            os.close(sock_fd)
    finally:
        bpfsys.close(map_fd)


def unregister(map_path, check_mode):
    """Empty slot 0 when the map is pinned; True when there was an entry."""
    if not os.path.exists(map_path):
        return False
    map_fd = open_map(map_path)
    try:
        if slot_cookie(map_fd) is None:
            return False
        if not check_mode:
            clear_slot(map_fd)
        return True
    finally:
        bpfsys.close(map_fd)
