# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One reconcile of the lab: observe, plan (plan.py), apply, report."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager

from ansible_collections.palisade.ebpf.plugins.module_utils import _result
from ansible_collections.palisade.ebpf.plugins.module_utils._lab import plan as lab
from ansible_collections.palisade.ebpf.plugins.module_utils._lab import processes as lab_host
from ansible_collections.palisade.ebpf.plugins.module_utils._lab import kernel as lab_kernel

KERNEL_KINDS = ("netns", "bridge", "link", "veth", "address", "route", "sysctl")
IPPROTO_SCTP = 132
LOCK_TIMEOUT = 300


def kernel_protocols():
    """Transport protocols the running kernel can open sockets for.

    SCTP is a module that many kernels (and containers) lack; an endpoint port
    on a missing protocol is skipped with a warning rather than failing the lab.
    """
    probes = {
        "TCP": (socket.SOCK_STREAM, socket.IPPROTO_TCP),
        "UDP": (socket.SOCK_DGRAM, socket.IPPROTO_UDP),
        "SCTP": (socket.SOCK_STREAM, IPPROTO_SCTP),
    }
    supported = []
    for name, (stype, proto) in sorted(probes.items()):
        try:
            sock = socket.socket(socket.AF_INET, stype, proto)
        except (OSError, socket.error):
            continue
        sock.close()
        supported.append(name)
    return supported


def script_rev(path):
    try:
        with open(path, "rb") as handle:
            return lab.short_hash(handle.read().decode("utf-8", "replace"))
    except (IOError, OSError):
        return "missing"


def read_record(spec):
    """The lab's record of the namespaces it manages (and whether it created them)."""
    try:
        with open(spec.record) as handle:
            data = json.load(handle)
    except (IOError, OSError, ValueError):
        return {"netns": {}}
    if not isinstance(data, dict) or not isinstance(data.get("netns"), dict):
        return {"netns": {}}
    return data


def write_record(spec, record):
    tmp = spec.record + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.rename(tmp, spec.record)


def _next_record(spec, record, desired, observed, created):
    """Record after this run: every desired namespace, with who created it.

    A namespace the inventory names itself (``netns:``) that already existed
    is adopted (created: false) and survives ``absent``; anything the lab
    created itself is deleted by ``absent``.
    """
    seen = dict((o.ident[0], o) for o in observed if o.kind == "netns")
    old = record.get("netns", {})
    result = {}
    for obj in desired:
        if obj.kind != "netns":
            continue
        name = obj.ident[0]
        if name in created:
            was_created = True
        elif name in old:
            was_created = bool(old[name].get("created"))
        else:
            was_created = not (name in seen and seen[name].meta.get("keep"))
        result[name] = {"role": obj.attrs["role"], "created": was_created}
    return {"prefix": spec.prefix, "netns": result}


@contextmanager
def lab_lock(spec):
    """Serialise lab runs that share a state root (all prefixes, by default).

    Two runs at once would race on the same namespaces, or, for two prefixes,
    on the root namespace's node routes.  The lock is on the state root
    directory itself (no lock file to leave behind); before that directory
    exists there is no lab to race with.
    """
    root = os.path.dirname(spec.state_dir)
    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
        yield
        return
    try:
        deadline = time.time() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.time() > deadline:
                    raise lab.LabError("another lab run has held the lock on %s for %ds; not waiting longer"
                                       % (root, LOCK_TIMEOUT))
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock


def _apply(kernel, host_ops, action):
    try:
        if action.obj.kind in KERNEL_KINDS:
            lab_kernel.apply(kernel, action)
        else:
            host_ops.apply(action)
    except lab.LabError:
        raise
    except (lab_kernel.NetlinkError, OSError, IOError) as exc:
        # Say which step failed; the earlier ones stay done and the next run converges.
        raise lab.LabError("%s failed: %s" % (lab.describe_action(action), exc))


def reconcile(spec, state, check_mode, bins):
    """Bring the lab to ``state``; returns the module's result
    (module_utils/_result.py: its objects one line each before and after,
    the actions as ``changes``).

    ``bins`` maps nsenter/unshare/sshd/ssh-keygen to their paths.
    """
    with lab_lock(spec):
        return _reconcile(spec, state, check_mode, bins)


def _reconcile(spec, state, check_mode, bins):
    record = read_record(spec)
    if state == "present":
        desired, warnings = lab.desired_objects(spec)
    else:
        desired, warnings = [], []

    kernel = lab_kernel.Kernel()
    try:
        observed = lab_kernel.observe(kernel, spec, record) + lab_host.observe(spec, record)
        actions = lab.plan_actions(desired, observed)
        before = [o for o in observed if not o.meta.get("foreign")]
        after = lab.after_objects(desired, observed)
        if actions and not check_mode:
            created = set()
            host_ops = lab_host.HostOps(spec, bins)
            try:
                for action in actions:
                    _apply(kernel, host_ops, action)
                    if action.obj.kind == "netns" and action.op == "create":
                        created.add(action.obj.ident[0])
            finally:
                # Even after a failure: what was created must be known as the
                # lab's, or the next absent would leave it behind.
                if state == "present" and os.path.isdir(spec.state_dir):
                    write_record(spec, _next_record(spec, record, desired, observed, created))
    finally:
        kernel.close()

    return _result.reconciled(
        bool(actions), lab.describe_all(before), lab.describe_all(after), [lab.change_line(a) for a in actions],
        "lab %s" % spec.prefix, warnings=warnings,
        prefix=spec.prefix, state_dir=spec.state_dir, ssh_private_key=spec.client_key if spec.ssh_hosts else None)
