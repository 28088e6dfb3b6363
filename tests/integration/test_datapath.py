# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""palisade.ebpf.datapath / datapath_info on the real kernel, with real packets.

Independent of the lab: this file makes its own scratch namespaces, named
with its pid (``paltest-dp-<pid>-h`` for the "host", ``-e1``..``-e3`` for
endpoints behind veth pairs ``lxc1``..``lxc3``), its own bpffs directory
(``/sys/fs/bpf/paltest-dp-<pid>``), and removes all of them, by name, at the
end. The modules run as Ansible runs them: the venv's ``ansible`` ad-hoc
command inside the host namespace (nsenter), /usr/bin/python3 on the target,
through the action plugin that renders the programs.

Packets are real: small TCP/UDP echo servers run in the endpoints, clients
send from the endpoints' namespaces, and verdicts are what comes back.
The kernel is inspected with tc, bpftool and the module_utils' own readers.
"""

from __future__ import absolute_import, division, print_function

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import abi, state as dp_state
from tests.support.kernel import TARGET_PYTHON, sh, target_has

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(ROOT, ".venv", "bin", "ansible")
COLLECTIONS = os.path.join(ROOT, "collections")
PID = os.getpid()
PREFIX = "paltest-dp-%d" % PID
BPFFS_DIR = "/sys/fs/bpf/%s" % PREFIX

# Identities: three endpoints, the host, a CIDR identity, world.
ID = {"e1": 70001, "e2": 70002, "e3": 70003}
ADDR = {"e1": "10.213.0.1", "e2": "10.213.0.2", "e3": "10.213.0.3"}
IFNAME = {"e1": "lxc1", "e2": "lxc2", "e3": "lxc3"}
TCP, UDP, ICMP = 6, 17, 1


pytestmark = [
    pytest.mark.bcc,
    pytest.mark.skipif(not os.path.exists(ANSIBLE), reason="%s missing (make setup)" % ANSIBLE),
    pytest.mark.skipif(not (shutil.which("nsenter") and shutil.which("ip") and shutil.which("tc")), reason="needs nsenter, ip, tc"),
    pytest.mark.skipif(shutil.which("bpftool") is None, reason="needs bpftool (make setup)"),
    pytest.mark.skipif(not (target_has("bcc") and target_has("pyroute2")), reason="%s lacks bcc or pyroute2" % TARGET_PYTHON),
    pytest.mark.skipif(not os.path.ismount("/sys/fs/bpf"), reason="bpffs is not mounted at /sys/fs/bpf"),
]

SERVER = r"""
import socket, sys, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()
def echo(c):
    try:
        while True:
            data = c.recv(4096)
            if not data:
                break
            c.sendall(data)
    except OSError:
        pass
    c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        data, peer = s.recvfrom(4096); s.sendto(data, peer)
for p in (80, 8080, 9000):
    threading.Thread(target=tcp, args=(p,), daemon=True).start()
threading.Thread(target=udp, args=(5353,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

# Probes run in parallel threads of one process: [{proto, dst, port}] -> [bool].
CLIENT = r"""
import json, os, socket, struct, sys, threading
TIMEOUT = 0.6
def csum(data):
    if len(data) % 2: data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
def tcp(dst, port):
    s = socket.socket(); s.settimeout(TIMEOUT)
    try:
        s.connect((dst, port)); s.sendall(b"hello"); return s.recv(16) == b"hello"
    except OSError:
        return False
    finally:
        s.close()
def udp(dst, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(TIMEOUT)
    try:
        s.sendto(b"ping", (dst, port)); return s.recvfrom(16)[0] == b"ping"
    except OSError:
        return False
    finally:
        s.close()
def refused(dst, port):
    # UDP to a closed port: True when the ICMP port unreachable came back.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(TIMEOUT)
    try:
        s.connect((dst, port)); s.send(b"ping"); s.recv(16)
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()
def icmp(dst, ident):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); s.settimeout(TIMEOUT)
    body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"palisade"
    body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
    try:
        s.sendto(body, (dst, 0))
        while True:
            data, peer = s.recvfrom(1500)
            ihl = (data[0] & 0xf) * 4
            if peer[0] == dst and data[ihl] == 0 and struct.unpack("!H", data[ihl + 4:ihl + 6])[0] == ident:
                return True
    except OSError:
        return False
    finally:
        s.close()
def spoof(src, dst, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    udp_hdr = struct.pack("!HHHH", 40000, port, 8 + 5, 0) + b"spoof"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp_hdr), 1, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    s.sendto(ip + udp_hdr, (dst, 0)); s.close(); return True
probes = json.loads(sys.argv[1]); results = [None] * len(probes)
def run(i, p):
    kind = p["proto"]
    results[i] = {"tcp": lambda: tcp(p["dst"], p["port"]), "udp": lambda: udp(p["dst"], p["port"]),
                  "icmp": lambda: icmp(p["dst"], p.get("id", os.getpid() & 0xffff)),
                  "refused": lambda: refused(p["dst"], p["port"]),
                  "spoof": lambda: spoof(p["src"], p["dst"], p["port"])}[kind]()
threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(probes)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(results))
"""

# A long-lived TCP flow: one echo round trip every 20 ms, until told to stop;
# prints how many round trips worked and the first error.
FLOW = r"""
import socket, sys, time, signal
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
ok, err, stop = 0, None, []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
while not stop:
    try:
        s.sendall(b"x" * 64)
        got = b""
        while len(got) < 64:
            chunk = s.recv(64 - len(got))
            if not chunk:
                raise OSError("closed")
            got += chunk
        ok += 1
    except OSError as exc:
        err = repr(exc); break
    time.sleep(0.02)
print(ok, err, flush=True)
"""


class Lab(object):
    """One "host" namespace with three endpoint namespaces behind veths.

    ``ensure(args)`` skips the ansible run (~1.6 s) when the last run applied
    exactly ``args``; any other run of the datapath module, and a failed
    test, make the next ``ensure`` apply again.
    """

    def __init__(self, tmp):
        self.host = PREFIX + "-h"
        self.eps = dict((name, "%s-%s" % (PREFIX, name)) for name in ADDR)
        self.tmp = str(tmp)
        self.servers = []
        self.host_netns = None
        self.current = None     # the arguments of the last successful apply(), while nothing ran since
        self.touched = False    # the datapath module ran (not in check mode) since the last reset()
        for name, text in (("server.py", SERVER), ("client.py", CLIENT), ("flow.py", FLOW)):
            with open(os.path.join(self.tmp, name), "w") as f:
                f.write(text)

    def create(self, make_netns):
        self.host_netns = make_netns(self.host)
        self.host_netns.sh("sysctl", "-qw", "net.ipv4.ip_forward=1")
        for name, netns in sorted(self.eps.items()):
            make_netns(netns)
            sh("ip", "-n", self.host, "link", "add", IFNAME[name], "type", "veth", "peer", "name", "eth0", "netns", netns)
            sh("ip", "-n", self.host, "link", "set", IFNAME[name], "up")
            sh("ip", "-n", netns, "link", "set", "eth0", "up")
            sh("ip", "-n", netns, "addr", "add", ADDR[name] + "/32", "dev", "eth0")
            mac = re.search(r"link/ether (\S+)", sh("ip", "-n", self.host, "-o", "link", "show", IFNAME[name])).group(1)
            sh("ip", "-n", netns, "neigh", "replace", "169.254.1.1", "lladdr", mac, "dev", "eth0", "nud", "permanent")
            sh("ip", "-n", netns, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
            sh("ip", "-n", netns, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
            sh("ip", "-n", self.host, "route", "add", ADDR[name] + "/32", "dev", IFNAME[name])
            proc = subprocess.Popen(["ip", "netns", "exec", netns, TARGET_PYTHON, os.path.join(self.tmp, "server.py")],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.servers.append(proc)
            assert proc.stdout.readline().strip() == "ready"

    def destroy(self):
        """The servers and the pins; the namespaces go with their fixture."""
        for proc in self.servers:
            proc.kill()
            proc.wait()
        if os.path.isdir(BPFFS_DIR):
            shutil.rmtree(BPFFS_DIR, ignore_errors=True)

    # -- running things -------------------------------------------------------------
    def run(self, module, args, check=False, diff=False, interpreter=TARGET_PYTHON, env=None):
        """palisade.ebpf.<module> inside the host namespace -> (rc, result, output)."""
        if module == "datapath" and not check:
            self.current, self.touched = None, True
        return self.host_netns.module(module, args, check=check, diff=diff, interpreter=interpreter, extra_env=env)

    def apply(self, args, **kwargs):
        rc, result, output = self.run("datapath", args, **kwargs)
        assert rc == 0 and not result["failed"], output
        self.current = json.dumps(args, sort_keys=True)
        return result

    def ensure(self, args):
        """Apply unless this exact state is what the last run applied (saves
        an ansible run, ~1.6 s, between tests that start from the same state)."""
        if self.current != json.dumps(args, sort_keys=True):
            self.apply(args)

    def invalidate(self):
        self.current = None

    def reset(self):
        """A datapath nothing was applied to (no pins, counters from zero)."""
        if self.touched:
            rc, result, output = self.run("datapath", {"bpffs_dir": BPFFS_DIR, "state": "absent"})
            assert rc == 0 and not result["failed"], output
            self.touched = False

    def info(self, **args):
        rc, result, output = self.run("datapath_info", dict({"bpffs_dir": BPFFS_DIR}, **args))
        assert rc == 0, output
        return result

    def probe(self, src, probes):
        out = sh("ip", "netns", "exec", self.eps[src], TARGET_PYTHON, os.path.join(self.tmp, "client.py"), json.dumps(probes))
        return json.loads(out)

    def start_flow(self, src, dst, port):
        return subprocess.Popen(["ip", "netns", "exec", self.eps[src], TARGET_PYTHON, os.path.join(self.tmp, "flow.py"),
                                 ADDR[dst], str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # -- inspecting the kernel --------------------------------------------------------
    def tc_filters(self, ifname, direction):
        return sh("ip", "netns", "exec", self.host, "tc", "filter", "show", "dev", ifname, direction)

    def map_pin(self, name):
        pins = glob.glob(os.path.join(BPFFS_DIR, "maps", name + "-*"))
        assert len(pins) == 1, pins
        return pins[0]

    def map_dump(self, name):
        return json.loads(sh("bpftool", "-j", "map", "dump", "pinned", self.map_pin(name)))

    def kernel_snapshot(self):
        """Everything the datapath owns, for "changed nothing" assertions."""
        snap = {"pins": sorted(os.path.relpath(p, BPFFS_DIR) for p in glob.glob(BPFFS_DIR + "/*/*"))}
        for name in ("endpoints", "policy", "ipcache_host", "ipcache_prefix"):
            if glob.glob(os.path.join(BPFFS_DIR, "maps", name + "-*")):
                snap[name] = sorted(json.dumps(e, sort_keys=True) for e in self.map_dump(name))
        for name in sorted(IFNAME.values()):
            for direction in ("ingress", "egress"):
                snap["%s/%s" % (name, direction)] = self.tc_filters(name, direction)
        return snap


@pytest.fixture(scope="module")
def lab(tmp_path_factory, module_netns_factory, failure_hooks):
    lab = Lab(tmp_path_factory.mktemp("datapath"))
    failure_hooks.append(lab.invalidate)
    try:
        lab.create(module_netns_factory)
        yield lab
    finally:
        lab.destroy()


def desired(e2_policy=None, e1_policy=None, endpoints=("e1", "e2", "e3"), settings=None):
    """e1, e3: clients; e2: the server whose ingress policy is tested."""
    if e2_policy is None:
        e2_policy = {
            "ingress": {"enforced": True, "entries": [
                [ID["e1"], TCP, 80, 80, "allow"],
                [ID["e1"], UDP, 5353, 5354, "allow"],            # nothing listens on 5354
                [ID["e1"], ICMP, 8, 8, "allow"],
                # deny beats allow: all of TCP from e1 is allowed, 8080 denied
                [ID["e1"], TCP, 0, 65535, "allow"],
                [ID["e1"], TCP, 8080, 8080, "deny"],
                [0, TCP, 9000, 9000, "redirect"],
            ]},
            "egress": {"enforced": False, "entries": []},
        }
    if e1_policy is None:
        e1_policy = {"ingress": {"enforced": True, "entries": []}, "egress": {"enforced": False, "entries": []}}
    policies = {"client": e1_policy, "server": e2_policy}
    eps = []
    for name in endpoints:
        eps.append({"key": "default/%s" % name, "ifname": IFNAME[name], "ipv4": ADDR[name], "identity": ID[name],
                    "policy": {"e1": "client", "e2": "server"}.get(name)})
    args = {
        "bpffs_dir": BPFFS_DIR,
        "ipcache": [[ADDR[n] + "/32", ID[n]] for n in sorted(ADDR)] + [["0.0.0.0/0", 2], ["10.213.9.0/24", 16777217]],
        "endpoints": eps,
        "policies": policies,
        "identities": {str(ID[n]): "k8s:app=%s" % n for n in ID},
    }
    if settings:
        args["settings"] = settings
    return args


def counter(info, reason, direction):
    return sum(c["packets"] for c in info["counters"] if c["reason"] == reason and c["direction"] == direction)


def test_enforcement_idempotence_and_check_mode(lab):
    lab.reset()
    args = desired()
    result = lab.apply(args)
    assert result["changed"] is True
    assert result["program"]["compiled"] is True
    assert result["attachments"] == {"attached": 6, "replaced": 0, "detached": 0}
    assert result["writes"]["endpoints"] == 3
    # before/after: a summary of what the module owns (a fresh host: nothing)
    digest = result["program"]["hash"]
    assert result["before"] == {"programs": [], "maps": [], "attached": {}, "steering": [], "entries": {}}
    owned = result["after"]
    assert owned["programs"] == [digest] and owned["steering"] == []
    assert owned["maps"] == sorted(os.path.basename(p) for p in glob.glob(BPFFS_DIR + "/maps/*"))
    assert owned["attached"] == dict((IFNAME[n], {"ingress": "from_endpoint:" + digest, "egress": "to_endpoint:" + digest})
                                     for n in IFNAME)
    assert owned["entries"] == {"endpoints": 3, "ipcache_host": 3, "ipcache_prefix": 2,
                                "policy": len(lab.map_dump("policy"))}
    # changes: the compile, the maps it creates, then one line per map write and per attachment
    assert result["changes"][0] == "+ program %s: compile (not compiled yet)" % digest
    assert len(result["changes"]) == 1 + len(owned["maps"]) + sum(result["writes"].values()) + 6, result["changes"]
    # Our filters, recognisable: priority 1, handle 0xc9, a palisade: name.
    shown = lab.tc_filters("lxc2", "egress")
    assert re.search(r"pref 1 bpf .*handle 0xc9 palisade:to_endpoint:%s direct-action" % result["program"]["hash"], shown), shown
    assert "palisade:from_endpoint:" in lab.tc_filters("lxc2", "ingress")

    results = lab.probe("e1", [
        {"proto": "tcp", "dst": ADDR["e2"], "port": 80},     # allowed, and the reply comes back (conntrack)
        {"proto": "udp", "dst": ADDR["e2"], "port": 5353},   # allowed UDP, echo reply
        {"proto": "icmp", "dst": ADDR["e2"]},                # allowed ICMP echo, reply
        {"proto": "tcp", "dst": ADDR["e2"], "port": 8080},   # deny beats the tcp/* allow
        {"proto": "tcp", "dst": ADDR["e2"], "port": 9000},   # redirect: passes for now, counted apart
        {"proto": "tcp", "dst": ADDR["e3"], "port": 80},     # e3 has no policy: open
        # Port unreachable from e2 reaches e1, whose ingress allows nothing:
        # an ICMP error about a tracked flow is related traffic.
        {"proto": "refused", "dst": ADDR["e2"], "port": 5354},
    ])
    assert results == [True, True, True, False, True, True, True]
    results = lab.probe("e3", [
        {"proto": "tcp", "dst": ADDR["e2"], "port": 80},     # not allowed: default deny
        {"proto": "udp", "dst": ADDR["e2"], "port": 5353},
        {"proto": "icmp", "dst": ADDR["e2"]},
        {"proto": "tcp", "dst": ADDR["e2"], "port": 9000},   # any-peer redirect entry
        {"proto": "tcp", "dst": ADDR["e1"], "port": 80},     # e1's ingress is enforced, allows nothing
    ])
    assert results == [False, False, False, True, False]
    # e2's egress is not enforced: it may open connections (to e3, which is open).
    assert lab.probe("e2", [{"proto": "tcp", "dst": ADDR["e3"], "port": 8080}]) == [True]

    after = lab.info(endpoints=True)  # a fresh datapath: counters started at zero
    assert counter(after, "DROP_POLICY_DENY", "ingress") >= 1
    assert counter(after, "DROP_POLICY", "ingress") >= 4
    assert counter(after, "FORWARD_REDIRECT", "ingress") >= 2
    assert counter(after, "FORWARD_REPLY", "egress") > 0  # replies left e2 through conntrack
    assert counter(after, "FORWARD_RELATED", "ingress") >= 1
    events = [e for e in after["events"] if e["reason"].startswith("DROP_POLICY")]
    deny = [e for e in events if e["reason"] == "DROP_POLICY_DENY"]
    assert deny and deny[-1]["dport"] == 8080 and deny[-1]["src"] == ADDR["e1"] and deny[-1]["dst"] == ADDR["e2"]
    assert deny[-1]["src_identity"] == ID["e1"] and deny[-1]["dst_identity"] == ID["e2"]
    assert deny[-1]["direction"] == "ingress" and deny[-1]["proto"] == "tcp"
    icmp = [e for e in events if e["proto"] == "icmp"]
    assert icmp and icmp[-1]["icmp_type"] == 8 and icmp[-1]["src_identity"] == ID["e3"]
    assert sorted(e["ipv4"] for e in after["endpoints"]) == sorted(ADDR.values())

    # Second run: nothing to do, no compiler, no writes.
    result = lab.apply(args)
    assert result["changed"] is False and result["program"]["compiled"] is False
    assert set(result["writes"].values()) == {0} and set(result["attachments"].values()) == {0}
    assert result["changes"] == []
    assert result["before"] == result["after"] == owned

    # --check with a different policy: reports, changes nothing.
    changed = desired(e2_policy={"ingress": {"enforced": True, "entries": [[ID["e3"], TCP, 80, 80, "allow"]]}})
    snapshot = lab.kernel_snapshot()
    rc, result, output = lab.run("datapath", changed, check=True, diff=True)
    assert rc == 0 and result["changed"] is True, output
    assert "+ policy server ingress: from %d (k8s:app=e3) tcp/80: allow" % ID["e3"] in result["changes"]
    assert "- policy server ingress: from %d (k8s:app=e1) tcp/8080: deny" % ID["e1"] in result["changes"]
    assert "+ policy server ingress: from 70003 (k8s:app=e3) tcp/80: allow" in output  # the --diff, prepared
    # the --diff's before/after: the summary, where only the policy map's size moves
    assert result["before"] == owned and result["after"]["entries"]["policy"] < owned["entries"]["policy"]
    assert dict(result["after"], entries=None) == dict(owned, entries=None)
    assert "-entries of policy: %d" % owned["entries"]["policy"] in output
    assert "+entries of policy: %d" % result["after"]["entries"]["policy"] in output
    assert result["writes"]["policy"] > 0
    assert lab.kernel_snapshot() == snapshot
    assert lab.probe("e3", [{"proto": "tcp", "dst": ADDR["e2"], "port": 80}]) == [False]


def test_spoofed_source_is_dropped_and_counted(lab):
    lab.ensure(desired())
    before = lab.info()  # also drains the event ring
    lab.probe("e1", [{"proto": "spoof", "src": "10.213.0.99", "dst": ADDR["e2"], "port": 5353},
                     {"proto": "spoof", "src": ADDR["e3"], "dst": ADDR["e2"], "port": 5353}])
    after = lab.info()
    assert counter(after, "DROP_INVALID_SIP", "egress") == counter(before, "DROP_INVALID_SIP", "egress") + 2
    spoofed = [e for e in after["events"] if e["reason"] == "DROP_INVALID_SIP"]
    assert sorted(e["src"] for e in spoofed) == sorted(["10.213.0.99", ADDR["e3"]])
    assert all(e["direction"] == "egress" and e["dport"] == 5353 for e in spoofed)
    # The real source still works.
    assert lab.probe("e1", [{"proto": "udp", "dst": ADDR["e2"], "port": 5353}]) == [True]


def test_drift_is_repaired(lab):
    args = desired()
    lab.ensure(args)
    # An operator deletes a policy entry by hand: e1 -> e2 udp/5353.
    policy_id = dp_state.policy_ids(args["policies"])["server"]
    key = abi.PolicyKey(policy_id=policy_id, identity=ID["e1"], dir_level=abi.DIR_INGRESS | abi.LEVEL_EXACT,
                        proto=UDP, port=abi.port_to_be16(5353))
    sh("bpftool", "map", "delete", "pinned", lab.map_pin("policy"), "key", "hex",
       *["%02x" % b for b in abi.to_bytes(key)])
    assert lab.probe("e1", [{"proto": "udp", "dst": ADDR["e2"], "port": 5353}]) == [False]
    result = lab.apply(args)
    assert result["changed"] is True and result["writes"]["policy"] == 1
    assert result["changes"] == ["+ policy server ingress: from %d (k8s:app=e1) udp/5353: allow" % ID["e1"]]
    assert result["after"]["entries"]["policy"] == result["before"]["entries"]["policy"] + 1
    assert lab.probe("e1", [{"proto": "udp", "dst": ADDR["e2"], "port": 5353}]) == [True]

    # ... and detaches a program by hand.
    sh("ip", "netns", "exec", lab.host, "tc", "filter", "del", "dev", "lxc2", "egress", "pref", "1", "handle", "0xc9", "bpf")
    assert lab.probe("e3", [{"proto": "tcp", "dst": ADDR["e2"], "port": 80}]) == [True]  # open without the program
    result = lab.apply(args)
    assert result["changed"] is True and result["attachments"]["attached"] == 1
    assert set(result["writes"].values()) == {0}
    assert "egress" not in result["before"]["attached"]["lxc2"] and "egress" in result["after"]["attached"]["lxc2"]
    assert lab.probe("e3", [{"proto": "tcp", "dst": ADDR["e2"], "port": 80}]) == [False]


def test_policy_change_keeps_established_flows(lab):
    lab.ensure(desired())
    flow = lab.start_flow("e1", "e2", 80)
    try:
        time.sleep(0.3)
        # Rewrite e2's policy: the flow stays allowed (tcp/80 moves into a
        # range entry), plus unrelated changes. Then the identities move too.
        changed = desired(e2_policy={"ingress": {"enforced": True, "entries": [
            [ID["e1"], TCP, 64, 127, "allow"], [ID["e3"], UDP, 5353, 5353, "allow"], [0, ICMP, 0, 255, "deny"]]}})
        result = lab.apply(changed)
        assert result["changed"] is True and result["writes"]["policy"] > 0
        assert lab.probe("e1", [{"proto": "tcp", "dst": ADDR["e2"], "port": 8080},
                                {"proto": "tcp", "dst": ADDR["e2"], "port": 80},
                                {"proto": "tcp", "dst": ADDR["e2"], "port": 9000},
                                {"proto": "icmp", "dst": ADDR["e2"]}]) == [False, True, False, False]
        assert lab.probe("e3", [{"proto": "udp", "dst": ADDR["e2"], "port": 5353}]) == [True]
        time.sleep(0.2)
        result = lab.apply(desired())
        assert result["changed"] is True
        time.sleep(0.2)
    finally:
        flow.send_signal(signal.SIGTERM)
        out, err = flow.communicate(timeout=5)
    count, error = out.split(" ", 1)
    assert error.strip() == "None" and int(count) > 10, (out, err)


def test_verifier_rejection_keeps_the_old_program(lab):
    lab.ensure(desired())
    before = lab.tc_filters("lxc2", "egress")
    digest = re.search(r"palisade:to_endpoint:([0-9a-f]+)", before).group(1)
    rc, result, output = lab.run("datapath", desired(settings={"inject_verifier_error": True}))
    assert rc != 0 and result["failed"] is True, output
    assert "verifier rejected" in result["msg"] and "left as they were" in result["msg"]
    assert "invalid access to packet" in result["verifier_log"], result
    assert lab.tc_filters("lxc2", "egress") == before
    assert "palisade:to_endpoint:%s" % digest in before
    assert lab.probe("e3", [{"proto": "tcp", "dst": ADDR["e2"], "port": 80}]) == [False]   # still enforced
    assert lab.probe("e1", [{"proto": "tcp", "dst": ADDR["e2"], "port": 80}]) == [True]
    # Back to the good rendering: cached, no compile, nothing to change.
    result = lab.apply(desired())
    assert result["changed"] is False and result["program"]["compiled"] is False


def test_removed_endpoint_loses_attachments_and_config(lab):
    lab.ensure(desired())
    ifindex = int(re.match(r"(\d+):", sh("ip", "-n", lab.host, "-o", "link", "show", "lxc3")).group(1))
    result = lab.apply(desired(endpoints=("e1", "e2")), diff=True)
    assert result["changed"] is True and result["attachments"]["detached"] == 2
    assert result["writes"]["endpoints"] == 1
    assert "- endpoint ifindex %d: %s identity %d (k8s:app=e3), policy none, enforce none" % (
        ifindex, ADDR["e3"], ID["e3"]) in result["changes"]
    assert "lxc3" in result["before"]["attached"] and "lxc3" not in result["after"]["attached"]
    assert (result["before"]["entries"]["endpoints"], result["after"]["entries"]["endpoints"]) == (3, 2)
    assert "palisade" not in lab.tc_filters("lxc3", "ingress") + lab.tc_filters("lxc3", "egress")
    assert ifindex not in [e["ifindex"] for e in lab.info(endpoints=True)["endpoints"]]
    assert "palisade:from_endpoint:" in lab.tc_filters("lxc1", "ingress")  # the others stay
    result = lab.apply(desired(endpoints=("e1", "e2")))
    assert result["changed"] is False


def test_interrupted_run_stays_closed_and_the_next_run_converges(lab):
    """A run killed at any point (here: while writing a large IP table and a
    changed policy) leaves enforcement closed, and the next run converges."""
    lab.ensure(desired())
    tightened = desired(e2_policy={
        "ingress": {"enforced": True, "entries": [[ID["e1"], TCP, 80, 80, "allow"]]},
        "egress": {"enforced": False, "entries": []},
    })
    # As large as one command-line argument allows (128 KiB), to widen the write window.
    tightened["ipcache"] += [["10.215.%d.%d/32" % (i // 250, i % 250 + 1), 90000 + i % 50] for i in range(3000)]
    for delay in (1.5, 2.2):
        cmd = ["nsenter", "--net=/run/netns/" + lab.host, ANSIBLE, "localhost", "-i", "localhost,", "-c", "local",
               "-e", "ansible_python_interpreter=" + TARGET_PYTHON, "-m", "palisade.ebpf.datapath", "-a", json.dumps(tightened)]
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd="/",
                                start_new_session=True)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole run: ansible and the module it started
        proc.wait()
        # Whatever was half written, nothing that both policies deny got through.
        assert lab.probe("e3", [{"proto": "tcp", "dst": ADDR["e2"], "port": 80}]) == [False]
        assert lab.probe("e1", [{"proto": "tcp", "dst": ADDR["e2"], "port": 8080}]) == [False]
        lab.current = None
    result = lab.apply(tightened)
    again = lab.apply(tightened)
    assert again["changed"] is False and sum(again["writes"].values()) == 0, again
    assert lab.probe("e1", [{"proto": "tcp", "dst": ADDR["e2"], "port": 80},
                            {"proto": "tcp", "dst": ADDR["e2"], "port": 22}]) == [True, False], result
    lab.apply(desired())


def test_map_full_fails_before_writing(lab):
    lab.ensure(desired())
    snapshot = lab.kernel_snapshot()
    # A host table of 16 entries (a new layout: a new map next to the old one)
    # cannot take 43 addresses: the run fails before compiling or writing.
    many = desired(settings={"ipcache_hosts_max": 16})
    many["ipcache"] += [["10.214.%d.%d/32" % (i // 250, i % 250 + 1), 80000 + i] for i in range(40)]
    rc, result, output = lab.run("datapath", many)
    assert rc != 0 and "map ipcache_host is too small" in result["msg"], output
    assert "Nothing was changed" in result["msg"]
    assert lab.kernel_snapshot() == snapshot


def test_missing_bcc_or_headers_is_one_line(lab):
    lab.ensure(desired())
    snapshot = lab.kernel_snapshot()
    # A Python without bcc (the controller's venv).
    rc, result, output = lab.run("datapath", desired(), interpreter=os.path.join(ROOT, ".venv", "bin", "python"))
    assert rc != 0 and result["msg"].startswith("bcc is not installed for this Python: install python3-bpfcc"), output
    assert "\n" not in result["msg"]
    # Headers bcc cannot find, on a rendering that needs compiling.
    rc, result, output = lab.run("datapath", desired(settings={"ct_timeout_other": 61}),
                                 env={"BCC_KERNEL_SOURCE": "/nonexistent"})
    assert rc != 0 and result["msg"].startswith("kernel headers for %s are missing: install linux-headers-" % os.uname().release), output
    assert "\n" not in result["msg"]
    assert lab.kernel_snapshot() == snapshot


def test_absent_removes_everything(lab):
    lab.ensure(desired())
    rc, check, output = lab.run("datapath", {"bpffs_dir": BPFFS_DIR, "state": "absent"}, check=True, diff=True)
    assert rc == 0 and check["changed"] is True and os.path.isdir(BPFFS_DIR), output
    assert "- directory %s" % BPFFS_DIR in check["changes"] and "- directory %s" % BPFFS_DIR in output
    assert check["after"] == {"programs": [], "maps": [], "attached": {}, "steering": [], "entries": {}}
    assert len(check["before"]["attached"]) == 3 and check["before"]["entries"]["endpoints"] == 3
    rc, result, output = lab.run("datapath", {"bpffs_dir": BPFFS_DIR, "state": "absent"})
    assert rc == 0 and result["changed"] is True and result["attachments"]["detached"] == 6, output
    assert result["before"] == check["before"] and result["changes"] == check["changes"]
    assert not os.path.exists(BPFFS_DIR)
    for ifname in IFNAME.values():
        assert "palisade" not in lab.tc_filters(ifname, "ingress") + lab.tc_filters(ifname, "egress")
    rc, result, output = lab.run("datapath", {"bpffs_dir": BPFFS_DIR, "state": "absent"})
    assert rc == 0 and result["changed"] is False, output
