# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's endpoint server (roles/lab/files/palisade_lab_server.py), run
on loopback: HTTP 200 to anything, UDP echo, its pid file, a clear failure."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.support.paths import REPO

SERVER = os.path.join(REPO, "roles", "lab", "files", "palisade_lab_server.py")


def free_port(kind):
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def server(tmp_path):
    tcp, udp = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    pidfile, log = tmp_path / "s.pid", tmp_path / "s.log"
    proc = subprocess.Popen([sys.executable, SERVER, "--endpoint", "default/web", "--rev", "t",
                             "--pidfile", str(pidfile), "--log", str(log),
                             "--listen", "tcp/%d" % tcp, "--listen", "udp/%d" % udp])
    deadline = time.time() + 10
    while not pidfile.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert pidfile.exists(), log.read_text() if log.exists() else "no log"
    yield {"proc": proc, "tcp": tcp, "udp": udp, "pidfile": pidfile, "log": log}
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_server_answers_200_to_any_method_and_path_with_keepalive(server):
    conn = http.client.HTTPConnection("127.0.0.1", server["tcp"], timeout=5)
    for method, path, body in [("GET", "/", None), ("POST", "/a/b?c=d", b"x" * 1000),
                               ("PURGE", "/weird", None), ("DELETE", "/x", b"")]:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        text = response.read().decode()
        assert response.status == 200
        assert response.getheader("X-Palisade-Endpoint") == "default/web"
        assert text.startswith("palisade-lab endpoint default/web: %s %s -> 200" % (method, path))
    # all four went over one connection
    assert conn.sock is not None
    conn.request("HEAD", "/")
    response = conn.getresponse()
    assert response.status == 200 and response.read() == b""
    conn.close()


def test_server_reads_chunked_bodies(server):
    conn = http.client.HTTPConnection("127.0.0.1", server["tcp"], timeout=5)
    conn.request("PUT", "/up", body=iter([b"abc", b"defg"]), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    response = conn.getresponse()
    assert response.status == 200
    assert "(7 body bytes)" in response.read().decode()
    conn.request("GET", "/after")
    assert conn.getresponse().status == 200


def test_server_echoes_udp(server):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(5)
    sock.sendto(b"ping 1", ("127.0.0.1", server["udp"]))
    assert sock.recvfrom(100)[0] == b"ping 1"
    sock.close()


def test_server_writes_its_pid_and_removes_it_on_sigterm(server):
    assert int(server["pidfile"].read_text()) == server["proc"].pid
    server["proc"].send_signal(signal.SIGTERM)
    assert server["proc"].wait(timeout=10) == 0
    assert not server["pidfile"].exists()
    assert "serving tcp/" in server["log"].read_text()


def test_server_fails_clearly_when_a_port_is_taken(tmp_path):
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("0.0.0.0", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        log = tmp_path / "s.log"
        rc = subprocess.call([sys.executable, SERVER, "--endpoint", "a/b", "--pidfile", str(tmp_path / "p"),
                              "--log", str(log), "--listen", "tcp/%d" % port], timeout=20)
        assert rc == 1
        assert "cannot listen on tcp/%d" % port in log.read_text()
        assert not (tmp_path / "p").exists()
    finally:
        busy.close()
