# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compile cache: programs pinned under <bpffs_dir>/progs/<hash>/.

<hash> is the sha256 of the rendered source (16 hex digits). A run whose
rendering has been compiled before opens the pinned programs and never
invokes the compiler. bcc can load a program only by compiling it, but a
loaded program can be pinned, and a pinned program can be attached by fd:
the pin is the cache, and it lives exactly as long as the bpffs does.

A cached program is used only while it is bound to the maps pinned now (its
map ids equal theirs): if a map pin was removed by hand, the program still
holds the old, orphaned map, and the rendering is compiled again (bcc then
creates and pins a fresh map).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import hashlib
import os
import shutil
import sys
import tempfile
import time

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import bpfsys
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.errors import (
    DatapathError,
    VerifierError,
    missing_bcc,
    missing_headers,
)

# name -> (program type, expected attach type or None); every rendering has all
# four, whether or not the L7 redirect attaches the last two.
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_PROG_TYPE_SK_LOOKUP = 30
PROGRAM_TYPES = {
    "from_endpoint": (BPF_PROG_TYPE_SCHED_CLS, None),
    "to_endpoint": (BPF_PROG_TYPE_SCHED_CLS, None),
    "from_network": (BPF_PROG_TYPE_SCHED_CLS, None),
    "steer_to_proxy": (BPF_PROG_TYPE_SK_LOOKUP, 36),  # BPF_SK_LOOKUP
}
PROGRAMS = tuple(sorted(PROGRAM_TYPES))
LOG_TAIL = 60  # lines of verifier/compiler output kept in the error


def source_hash(source):
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def progs_dir(bpffs_dir):
    return os.path.join(bpffs_dir, "progs")


def prog_pin(bpffs_dir, digest, name):
    return os.path.join(progs_dir(bpffs_dir), digest, name)


def cached_hashes(bpffs_dir):
    try:
        return sorted(os.listdir(progs_dir(bpffs_dir)))
    except OSError:
        return []


class Loaded(object):
    """Open fds of one rendering's programs, and their ids."""

    def __init__(self, digest, fds):
        self.digest = digest
        self.fds = fds
        self.infos = dict((name, bpfsys.prog_info(fd)) for name, fd in fds.items())

    def prog_id(self, name):
        return self.infos[name]["id"]

    def map_ids(self):
        ids = set()
        for info in self.infos.values():
            ids.update(info["map_ids"])
        return ids

    def close(self):
        for fd in self.fds.values():
            bpfsys.close(fd)
        self.fds = {}


def open_cached(bpffs_dir, digest):
    """The pinned programs of this rendering, or None when not (fully) pinned."""
    fds = {}
    for name in PROGRAMS:
        fd = bpfsys.obj_get(prog_pin(bpffs_dir, digest, name))
        if fd is None:
            for other in fds.values():
                bpfsys.close(other)
            return None
        fds[name] = fd
    return Loaded(digest, fds)


class _CapturedOutput(object):
    """Collect what bcc, clang and libbpf write to fds 1 and 2 (compiler
    messages, the verifier log, bcc's "Unable to find kernel headers" on
    stdout) so that a failure can report it, and so that none of it lands in
    the module's JSON output."""

    def __init__(self):
        self.text = ""
        self._saved = {}
        self._file = None

    @staticmethod
    def _flush():
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            ctypes.CDLL(None).fflush(None)  # C stdio buffers of bcc/clang
        except (OSError, AttributeError):
            pass

    def __enter__(self):
        self._flush()
        self._file = tempfile.TemporaryFile()
        for fd in (1, 2):
            self._saved[fd] = os.dup(fd)
            os.dup2(self._file.fileno(), fd)
        return self

    def __exit__(self, *exc):
        self._flush()
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
            os.close(saved)
        self._file.seek(0)
        self.text = self._file.read().decode("utf-8", "replace")
        self._file.close()
        return False


def _tail(text, lines=LOG_TAIL):
    parts = [line for line in text.splitlines() if line.strip()]
    if len(parts) > lines:
        parts = ["... (%d lines before)" % (len(parts) - lines)] + parts[-lines:]
    return "\n".join(parts)


def compile_and_pin(source, bpffs_dir, digest):
    """Compile with bcc, load both programs (the verifier runs here), pin them.

    Missing maps are created and pinned by bcc (BPF_TABLE_PINNED). Nothing is
    attached; a failure leaves the attached programs as they were and raises
    VerifierError with the compiler's or verifier's output.
    """
    try:
        from bcc import BPF  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise missing_bcc()
    os.makedirs(os.path.join(bpffs_dir, "maps"), exist_ok=True)
    started = time.time()
    bpf = None
    stage = "compile"
    with _CapturedOutput() as captured:
        try:
            bpf = BPF(text=source)
            stage = "load"
            funcs = {}
            for name in PROGRAMS:
                prog_type, attach_type = PROGRAM_TYPES[name]
                if attach_type is None:
                    funcs[name] = bpf.load_func(name, prog_type)
                else:
                    funcs[name] = bpf.load_func(name, prog_type, attach_type=attach_type)
        except Exception as exc:  # pylint: disable=broad-except
            failure = exc
        else:
            failure = None
    if failure is not None:
        if bpf is not None:
            bpf.cleanup()
        log = captured.text
        if stage == "compile" and ("Unable to find kernel headers" in log
                                   or ("file not found" in log and "linux/" in log)):
            raise missing_headers(_tail(log))
        if stage == "compile":
            raise VerifierError("the datapath program did not compile (bcc): %s" % failure, details=_tail(log))
        raise VerifierError("the kernel's verifier rejected the datapath program %s; the attached programs "
                            "were left as they were: %s" % (digest, _tail(log, 25)), details=_tail(log))
    compile_seconds = time.time() - started
    target = os.path.join(progs_dir(bpffs_dir), digest)
    if os.path.isdir(target):
        shutil.rmtree(target)  # a partial pin from an interrupted run
    os.makedirs(target)
    for name in PROGRAMS:
        bpfsys.obj_pin(funcs[name].fd, prog_pin(bpffs_dir, digest, name))
    loaded = open_cached(bpffs_dir, digest)
    bpf.cleanup()
    if loaded is None:
        raise DatapathError("programs %s were compiled but could not be opened from their pins" % digest)
    loaded.compile_seconds = compile_seconds
    return loaded


def remove_stale(bpffs_dir, keep):
    """Unpin every cached rendering but `keep`; returns the removed hashes."""
    removed = []
    for digest in cached_hashes(bpffs_dir):
        if digest != keep:
            shutil.rmtree(os.path.join(progs_dir(bpffs_dir), digest), ignore_errors=True)
            removed.append(digest)
    return removed
