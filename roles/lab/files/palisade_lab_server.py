# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Endpoint server of the palisade.ebpf lab (standard library only).

One process per endpoint, started by the ``palisade.ebpf.lab`` module inside
the endpoint's network namespace.  It serves every ``--listen PROTO/PORT``:

- ``tcp/N`` (and ``sctp/N`` where the kernel has SCTP): HTTP/1.1 answering
  200 to any method and path, with a short text body naming the endpoint;
  request bodies (Content-Length or chunked) are read, keep-alive works.
- ``udp/N``: echoes every datagram back to its sender.

It binds 0.0.0.0, so it answers on whatever address the product later gives
the endpoint.  Once every port is bound it writes ``--pidfile`` (the module
waits for that); logs go to ``--log``.  SIGTERM/SIGINT stop it.
"""

from __future__ import absolute_import, division, print_function

import argparse
import logging
import os
import signal
import socket
import sys
import threading

try:
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from socketserver import ThreadingMixIn
except ImportError:  # pragma: no cover - Python 2 is not supported
    sys.exit("palisade_lab_server.py needs Python 3")

IPPROTO_SCTP = 132
PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "sctp": IPPROTO_SCTP, "udp": socket.IPPROTO_UDP}
READ_CHUNK = 65536
MAX_LINE = 65536


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says otherwise
    server_version = "palisade-lab"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection frees its thread after this
    # Headers and body leave in one write: with two, a keep-alive client waits
    # for a delayed ACK on every request (Nagle), ~40 ms each.
    wbufsize = -1

    def __getattr__(self, name):
        # BaseHTTPRequestHandler dispatches to do_<METHOD>; every method gets 200.
        if name.startswith("do_"):
            return self._answer
        raise AttributeError(name)

    def _read_exactly(self, count):
        while count > 0:
            chunk = self.rfile.read(min(count, READ_CHUNK))
            if not chunk:
                raise ValueError("connection closed inside the request body")
            count -= len(chunk)

    def _read_body(self):
        """Consume the request body so the next request on the connection parses."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            total = 0
            while True:
                line = self.rfile.readline(MAX_LINE)
                size = int(line.split(b";", 1)[0].strip() or b"x", 16)
                if size == 0:
                    while self.rfile.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return total
                self._read_exactly(size + 2)  # data + CRLF
                total += size
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        self._read_exactly(length)
        return length

    def _answer(self):
        try:
            received = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self.send_error(400, "bad request body: %s" % exc)
            return
        endpoint = self.server.endpoint
        body = ("palisade-lab endpoint %s: %s %s -> 200 (%d body bytes)\n" % (
            endpoint, self.command, self.path, received)).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Palisade-Endpoint", endpoint)
        # Who the endpoint saw: a transparent proxy in between must not hide the client.
        self.send_header("X-Palisade-Client", self.client_address[0])
        if self.close_connection:
            self.send_header("Connection", "close")
        elif self.request_version == "HTTP/1.0":
            self.send_header("Connection", "keep-alive")  # an HTTP/1.0 client assumes close otherwise
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, fmt, *args):  # pylint: disable=arguments-differ
        logging.info("%s %s:%s %s", self.server.label, self.client_address[0], self.client_address[1], fmt % args)


class HTTPListener(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A peer that resets its connection (a client's timeout, a proxy
        # closing abortively) is normal traffic: one line, not a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            logging.info("%s %s:%s %s", self.label, client_address[0], client_address[1], exc)
            return
        HTTPServer.handle_error(self, request, client_address)

    def __init__(self, port, proto, endpoint, label):
        self.endpoint = endpoint
        self.label = label
        HTTPServer.__init__(self, ("0.0.0.0", port), Handler, bind_and_activate=False)
        if proto != socket.IPPROTO_TCP:
            # socketserver cannot pass a protocol: swap in a one-to-one SCTP socket.
            self.socket.close()
            self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
        try:
            self.server_bind()
            self.server_activate()
        except Exception:
            self.server_close()
            raise

    def server_bind(self):
        # HTTPServer.server_bind would resolve 0.0.0.0 with getfqdn(), which in
        # an empty namespace means waiting on an unreachable resolver.
        if self.allow_reuse_address:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = self.server_address[0], self.server_address[1]


def udp_echo(sock, label):
    while True:
        try:
            data, peer = sock.recvfrom(65535)
            sock.sendto(data, peer)
        except OSError as exc:
            logging.warning("%s: %s", label, exc)


def parse_args(argv):
    parser = argparse.ArgumentParser(description="palisade.ebpf lab endpoint server")
    parser.add_argument("--endpoint", required=True, help="namespace/name of the endpoint")
    parser.add_argument("--rev", default="", help="revision tag of this script (for the lab's bookkeeping)")
    parser.add_argument("--pidfile", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--listen", action="append", default=[], help="PROTO/PORT, e.g. tcp/80 or udp/53")
    return parser.parse_args(argv)


def write_pidfile(path):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as handle:
        handle.write("%d\n" % os.getpid())
    os.rename(tmp, path)


def remove_pidfile(path):
    try:
        with open(path) as handle:
            if handle.read().strip() == str(os.getpid()):
                os.unlink(path)
    except (IOError, OSError):
        pass


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(filename=args.log, level=logging.INFO,
                        format="%(asctime)s [" + args.endpoint + " pid %(process)d] %(levelname)s %(message)s")
    if not args.listen:
        logging.error("nothing to serve: no --listen given")
        return 2

    threads = []
    for item in args.listen:
        proto_name, _sep, port_text = item.partition("/")
        proto = PROTOCOLS.get(proto_name.lower())
        if proto is None or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            logging.error("bad --listen %r: expected tcp/PORT, udp/PORT or sctp/PORT", item)
            return 2
        port = int(port_text)
        try:
            if proto == socket.IPPROTO_UDP:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind(("0.0.0.0", port))
                threads.append(threading.Thread(target=udp_echo, args=(sock, item), name=item))
            else:
                server = HTTPListener(port, proto, args.endpoint, item)
                threads.append(threading.Thread(target=server.serve_forever, name=item))
        except OSError as exc:
            logging.error("cannot listen on %s: %s", item, exc)
            return 1
    for thread in threads:
        thread.daemon = True
        thread.start()

    stop = threading.Event()

    def on_signal(signum, _frame):
        logging.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    write_pidfile(args.pidfile)
    logging.info("serving %s", " ".join(args.listen))
    try:
        while not stop.wait(1.0):
            pass
    finally:
        remove_pidfile(args.pidfile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
