# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy's runtime API (the admin stats socket) and its map files.

The proxy's maps live twice: in the files HAProxy loads at (re)start, and in
the running worker, where ``add/set/del map`` take effect on the next request
without a reload. Runtime changes are never written back to the files, so the
module writes the files first and then brings the runtime in line.

Map file format: one ``key value`` per line; the key is the first word, the
value the rest of the line. Keys therefore cannot hold whitespace.

The CLI is driven in ``prompt`` mode, pipelined on one connection: every
command's answer is followed by ``"\\n> "``, so answers split cleanly (values
never contain a newline). Arguments are escaped with backslashes (space,
``;``, ``\\``) as the CLI parser expects.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import io
import os
import re
import socket
import tempfile
import threading
import time

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.errors import DatapathError

SOCKET_NAME = "haproxy.sock"
CONFIG_NAME = "haproxy.cfg"
PID_NAME = "haproxy.pid"
IDENTITIES = "identities"
MAP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CLI_TIMEOUT = 10.0
PROMPT = b"\n> "


class L7ProxyError(DatapathError):
    """A failure reported as the task's message (one line, plus details)."""


# --- map files ------------------------------------------------------------------
def map_path(directory, name):
    return os.path.join(directory, name + ".map")


def check_entries(name, entries):
    """{key: value} as strings; L7ProxyError on what a map file cannot hold."""
    if not MAP_NAME_RE.match(name or ""):
        raise L7ProxyError("maps: %r is not a plain file base name" % (name,))
    out = {}
    for key, value in (entries or {}).items():
        key = str(key)
        value = "" if value is None else str(value)
        if not key or any(ch.isspace() for ch in key):
            raise L7ProxyError("maps.%s: key %r is empty or contains whitespace" % (name, key))
        if "\n" in value or "\r" in value or value != value.strip():
            raise L7ProxyError("maps.%s: value of %r has a newline or surrounding whitespace" % (name, key))
        if not value:
            raise L7ProxyError("maps.%s: value of %r is empty" % (name, key))
        out[key] = value
    return out


def ipcache_entries(rows):
    """[[prefix, identity]] -> {key: identity}; a /32 is written as the bare address."""
    out = {}
    for prefix, identity in rows:
        prefix = str(prefix)
        if prefix.endswith("/32"):
            prefix = prefix[:-3]
        out[prefix] = str(int(identity))
    return out


def render_map(entries):
    return "".join("%s %s\n" % (key, entries[key]) for key in sorted(entries))


def parse_map_text(text):
    """{key: value} of a map file's text (comments and blank lines skipped; the
    last of duplicate keys wins, as the diff only needs "differs or not")."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return out


def read_file(path):
    try:
        with open(path, "r") as f:
            return f.read()
    except (IOError, OSError):
        return None


def write_atomic(path, text, mode=0o644):
    """Write text to path through a temporary file in the same directory and a rename."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def count_diff(current, wanted):
    """(added, changed, removed) keys between two {key: value}."""
    added = [k for k in wanted if k not in current]
    removed = [k for k in current if k not in wanted]
    changed = [k for k in wanted if k in current and current[k] != wanted[k]]
    return added, changed, removed


def describe_counts(added, changed, removed):
    parts = []
    if added:
        parts.append("+%d" % added)
    if changed:
        parts.append("~%d" % changed)
    if removed:
        parts.append("-%d" % removed)
    return " ".join(parts) or "0"


# --- the CLI ------------------------------------------------------------------------
def escape(arg):
    """One CLI argument: backslash before backslash, space, tab and ';'."""
    return re.sub(r"([\\ \t;])", r"\\\1", arg)


def cli(sock_path, commands, timeout=CLI_TIMEOUT):
    """Run commands (each a str, already escaped) on one connection in prompt
    mode; their answers, in order, as str. L7ProxyError when the socket does
    not answer."""
    commands = list(commands)
    payload = ("prompt\n" + "".join(c + "\n" for c in commands) + "quit\n").encode("utf-8")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    errors = []
    chunks = []
    try:
        sock.connect(sock_path)

        # Write from a thread while reading here: a large pipelined batch must
        # not block on a full socket buffer while HAProxy waits for us to read.
        def writer():
            try:
                sock.sendall(payload)
            except (OSError, socket.error) as exc:
                errors.append(exc)

        thread = threading.Thread(target=writer)
        thread.daemon = True
        thread.start()
        deadline = time.time() + timeout
        while True:
            if time.time() > deadline:
                raise socket.timeout("no end of answer after %.0fs" % timeout)
            data = sock.recv(1 << 16)
            if not data:
                break
            chunks.append(data)
        thread.join(timeout)
    except (OSError, socket.error) as exc:
        raise L7ProxyError("HAProxy's stats socket %s does not answer: %s" % (sock_path, exc))
    finally:
        sock.close()
    if errors:
        raise L7ProxyError("HAProxy's stats socket %s closed early: %s" % (sock_path, errors[0]))
    raw = b"".join(chunks)
    # "prompt" answers "" + PROMPT; every later command "<text>\n" + PROMPT;
    # "quit" closes without a prompt.
    parts = raw.split(PROMPT)
    answers = [p.decode("utf-8", "replace") for p in parts[1:1 + len(commands)]]
    if len(answers) < len(commands):
        raise L7ProxyError("HAProxy's stats socket %s answered %d of %d commands"
                           % (sock_path, len(answers), len(commands)), details=raw[-2000:].decode("utf-8", "replace"))
    return answers


def cli_one(sock_path, command, timeout=CLI_TIMEOUT):
    return cli(sock_path, [command], timeout)[0]


def show_info(sock_path, timeout=CLI_TIMEOUT):
    out = {}
    for line in cli_one(sock_path, "show info", timeout).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def show_stat(sock_path, timeout=CLI_TIMEOUT):
    text = cli_one(sock_path, "show stat", timeout)
    text = text.lstrip("# ").strip("\n")
    return list(csv.DictReader(io.StringIO(text)))


def map_refs(sock_path):
    """{realpath of map file: name as the configuration spells it} of the
    worker's maps (``show map`` without argument)."""
    out = {}
    for line in cli_one(sock_path, "show map").splitlines():
        match = re.match(r"^-?\d+ \((.*?)\) ", line)
        if match:
            out[os.path.realpath(match.group(1))] = match.group(1)
    return out


def show_map(sock_path, ref):
    """[(key, value)] of a map in the running worker, duplicates included."""
    text = cli_one(sock_path, "show map " + escape(ref))
    out = []
    for line in text.splitlines():
        if not line.startswith("0x"):
            if line.strip():
                raise L7ProxyError("show map %s: %s" % (ref, line.strip()))
            continue
        parts = line.split(" ", 2)
        out.append((parts[1], parts[2] if len(parts) > 2 else ""))
    return out


def runtime_commands(ref, entries, wanted):
    """CLI commands turning the runtime entries [(key, value)] into wanted
    {key: value}, and (added, changed, removed) counts. A key present more
    than once at runtime is deleted and added again."""
    seen = {}
    for key, value in entries:
        seen.setdefault(key, []).append(value)
    commands = []
    added = changed = removed = 0
    mref = escape(ref)
    for key in sorted(seen):
        if key not in wanted:
            commands.append("del map %s %s" % (mref, escape(key)))
            removed += 1
    for key in sorted(wanted):
        values = seen.get(key)
        value = wanted[key]
        if values is None:
            commands.append("add map %s %s %s" % (mref, escape(key), escape(value)))
            added += 1
        elif len(values) > 1:
            commands.append("del map %s %s" % (mref, escape(key)))
            commands.append("add map %s %s %s" % (mref, escape(key), escape(value)))
            changed += 1
        elif values[0] != value:
            commands.append("set map %s %s %s" % (mref, escape(key), escape(value)))
            changed += 1
    return commands, (added, changed, removed)


def apply_commands(sock_path, commands):
    """Run map-changing commands; L7ProxyError with HAProxy's answers when one failed."""
    if not commands:
        return
    replies = cli(sock_path, commands, timeout=max(CLI_TIMEOUT, len(commands) / 500.0))
    failed = ["%s: %s" % (cmd, reply.strip()) for cmd, reply in zip(commands, replies) if reply.strip()]
    if failed:
        raise L7ProxyError("HAProxy refused %d runtime map change(s); first: %s" % (len(failed), failed[0]),
                           details="\n".join(failed[:50]))


# --- statistics ---------------------------------------------------------------------
def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _master_pid(directory):
    text = read_file(os.path.join(directory, PID_NAME))
    try:
        return int(text.split()[0]) if text else None
    except (ValueError, IndexError):
        return None


def proxy_stats(directory, timeout=2.0):
    """The proxy's counters from ``show info`` and ``show stat``, summed over
    frontends (FRONTEND rows) and backends (BACKEND rows); running=False and
    zeros when the stats socket does not answer.

    denied counts the frontends' 4xx answers (hrsp_4xx), which include the 403
    of ``http-request deny`` (also counted in dreq, given as denied_by_rule) and
    of ``http-request return status 403``.
    """
    sock_path = os.path.join(directory, SOCKET_NAME)
    out = {"running": False, "pid": _master_pid(directory), "worker_pid": None, "uptime_s": 0, "requests": 0,
           "denied": 0, "denied_by_rule": 0, "responses_5xx": 0, "upstream_errors": 0, "current_connections": 0}
    try:
        info = show_info(sock_path, timeout)
        rows = show_stat(sock_path, timeout)
    except L7ProxyError:
        return out
    out["running"] = True
    out["worker_pid"] = _int(info.get("Pid")) or None
    out["uptime_s"] = _int(info.get("Uptime_sec"))
    for row in rows:
        kind = row.get("svname")
        if kind == "FRONTEND":
            out["requests"] += _int(row.get("req_tot"))
            out["denied"] += _int(row.get("hrsp_4xx"))
            out["denied_by_rule"] += _int(row.get("dreq"))
            out["responses_5xx"] += _int(row.get("hrsp_5xx"))
            out["current_connections"] += _int(row.get("scur"))
        elif kind == "BACKEND":
            out["upstream_errors"] += _int(row.get("econ")) + _int(row.get("eresp"))
    return out
