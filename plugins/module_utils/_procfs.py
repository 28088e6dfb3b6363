# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Processes as /proc shows them: the one copy the L7 proxy's service and
the lab's servers use to find, check and stop the processes they started
(always by pid, after checking what the process is, never by name)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os


def read_pidfile(path):
    """The pid a pid file holds (its first word), or None."""
    try:
        with open(path) as handle:
            words = handle.read().split()
    except (IOError, OSError):
        return None
    return int(words[0]) if words and words[0].isdigit() else None


def _stat_fields(pid):
    """(state, ppid) of a process, or None when it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            text = handle.read()
    except (IOError, OSError):
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    rest = text[text.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def alive(pid):
    """True when ``pid`` exists and is neither a zombie nor dead."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def cmdline(pid):
    """argv of a live process, or None (gone or a zombie)."""
    if not alive(pid):
        return None
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            raw = handle.read()
    except (IOError, OSError):
        return None
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def netns_inode(pid):
    """The inode of a process's network namespace, or None."""
    try:
        return os.stat("/proc/%d/ns/net" % pid).st_ino
    except OSError:
        return None


def _children_by_parent():
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and fields[0] not in ("Z", "X"):
                found.setdefault(fields[1], []).append(int(entry))
    return found


def children(pid):
    """Live pids whose parent is ``pid``, sorted."""
    return sorted(_children_by_parent().get(pid, ()))


def descendants(pid):
    """Every live pid below ``pid``: children, their children, ..."""
    by_parent = _children_by_parent()
    result, todo = [], list(by_parent.get(pid, ()))
    while todo:
        child = todo.pop()
        result.append(child)
        todo.extend(by_parent.get(child, ()))
    return result
