# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real traffic from inside an endpoint's network namespace.

Each source namespace gets one forked child that enters it (setns) and runs
that namespace's probes concurrently; results come back over a pipe as JSON.
Forking keeps the module process itself in the host namespace.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno
import json
import os
import socket
import threading
import time

CLONE_NEWNET = 0x40000000
IPPROTO_SCTP = 132


def _setns(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns(%s): %s" % (path, os.strerror(err)))
    finally:
        os.close(fd)


def verdict(result, probe):
    """allow when the connection was made (TCP/SCTP), echoed (UDP) or got a 2xx (HTTP)."""
    if probe.get("http") is not None:
        status = result.get("http_status")
        return "allow" if status is not None and 200 <= status < 300 else "deny"
    return "allow" if result.get("connected") else "deny"


def _http(sock, probe, timeout):
    http = probe.get("http") or {}
    method = (http.get("method") or "GET").upper()
    path = http.get("path") or "/"
    headers = dict(http.get("headers") or {})
    headers.setdefault("Host", "%s:%s" % (probe["to"], probe["port"]))
    headers.setdefault("Connection", "close")
    headers.setdefault("User-Agent", "palisade-probe")
    body = http.get("body") or ""
    if body or method in ("POST", "PUT", "PATCH"):
        headers.setdefault("Content-Length", str(len(body.encode("utf-8"))))
    request = "%s %s HTTP/1.1\r\n%s\r\n%s" % (
        method, path, "".join("%s: %s\r\n" % kv for kv in headers.items()), body)
    sock.sendall(request.encode("utf-8"))
    data = b""
    deadline = time.time() + timeout
    while b"\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.time()))
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])


def run_one(probe, timeout):
    """One probe from the current namespace. Never raises."""
    result = {"connected": False, "http_status": None, "error": None}
    protocol = probe.get("protocol", "TCP")
    address = (probe["to"], int(probe["port"]))
    sock = None
    try:
        if protocol == "UDP":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(timeout)
            nonce = ("palisade-probe %s %f" % (os.getpid(), time.time())).encode("ascii")
            sock.connect(address)
            sock.send(nonce)
            deadline = time.time() + timeout
            while True:
                sock.settimeout(max(0.01, deadline - time.time()))
                if sock.recv(65535) == nonce:
                    result["connected"] = True
                    break
        else:
            proto = IPPROTO_SCTP if protocol == "SCTP" else 0
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
            sock.settimeout(timeout)
            sock.connect(address)
            result["connected"] = True
            if probe.get("http") is not None and protocol == "TCP":
                result["http_status"] = _http(sock, probe, timeout)
    except socket.timeout:
        result["error"] = "timed out after %ss" % timeout
    except OSError as exc:
        if exc.errno == errno.EPROTONOSUPPORT:
            result["error"] = "%s is not supported by this kernel" % protocol
        else:
            result["error"] = exc.strerror or str(exc)
    finally:
        if sock is not None:
            sock.close()
    result["verdict"] = verdict(result, probe)
    # Echo what was probed, so a result reads on its own.
    result.update({"from": probe["from"], "to": probe["to"], "port": int(probe["port"]), "protocol": protocol})
    if probe.get("http") is not None:
        result["http"] = {"method": (probe["http"].get("method") or "GET").upper(), "path": probe["http"].get("path") or "/"}
    return result


def run_in_netns(netns_path, probes, timeout):
    """Run ``probes`` concurrently from inside ``netns_path``; results in order."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: enter the namespace, probe, report, exit without cleanup handlers
        os.close(read_fd)
        try:
            _setns(netns_path)
            results = [None] * len(probes)

            def work(i):
                results[i] = run_one(probes[i], timeout)

            threads = [threading.Thread(target=work, args=(i,)) for i in range(len(probes))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            payload = json.dumps({"results": results})
        except Exception as exc:  # reported to the parent, which fails the task
            payload = json.dumps({"error": str(exc)})
        with os.fdopen(write_fd, "w") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as inp:
        payload = inp.read()
    os.waitpid(pid, 0)
    data = json.loads(payload or '{"error": "probe process died"}')
    if "error" in data:
        raise RuntimeError(data["error"])
    return data["results"]


def run_probes(probes, netns_of, timeout):
    """``netns_of(probe)`` gives the source netns path; returns results in order."""
    groups = {}
    for index, probe in enumerate(probes):
        groups.setdefault(netns_of(probe), []).append(index)
    results = [None] * len(probes)
    for path, indexes in groups.items():
        batch = run_in_netns(path, [probes[i] for i in indexes], timeout)
        for i, res in zip(indexes, batch):
            results[i] = res
    return results
