# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/lab.yml against the real kernel (root).

One lab with its own prefix (``plt<pid>``) and its own node addresses
(203.0.113.0/24, which no other test uses): three hosts, one of them reached
over SSH, endpoints with TCP, UDP and SCTP ports, made by the lab factory
(tests/integration/conftest.py), which runs ``absent`` after the module
whatever happened. The tests run in file order like an operator's successive
runs: the lab is up for all of them, and the last two take it down.

The machine may be shared with other labs while this runs, so "nothing else
changed" is checked on what could be this lab's (its prefix, its addresses)
plus: every root-namespace link and route that existed before is still there.
Kernel state is read with ``ip`` here, independently of the module's pyroute2.
"""

from __future__ import absolute_import, division, print_function

import copy
import json
import os
import re
import socket
import subprocess
import textwrap

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._procfs import alive
from tests.support.kernel import netns_list as netns_names, sh
from tools.fleetlab import Lab, env, playbook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, ".venv", "bin")
PREFIX = "plt%d" % os.getpid()
CHECK_PREFIX = "plc%d" % os.getpid()
STATE_DIR = "/var/lib/palisade-lab/%s" % PREFIX
KEY = os.path.join(STATE_DIR, "id_ed25519")
IPS = {"alpha": "203.0.113.21", "beta": "203.0.113.22", "gamma": "203.0.113.23"}
SSH_OPTS = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"]

HOSTS = {
    "alpha": {
        "palisade_node": {"ipv4": IPS["alpha"], "pod_cidr": "10.71.1.0/24"},
        "palisade_endpoints": [
            {"name": "web", "labels": {"app": "web"}, "ipv4": "10.71.1.10",
             "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                       {"name": "dns", "port": 5353, "protocol": "UDP"},
                       {"name": "sig", "port": 3868, "protocol": "SCTP"}]},
            {"name": "plain", "namespace": "shop", "labels": {"app": "plain"}, "ipv4": "10.71.1.20"},
        ],
    },
    "beta": {
        "palisade_node": {"ipv4": IPS["beta"]},
        "palisade_endpoints": [
            {"name": "api", "labels": {"app": "api"}, "ipv4": "10.71.2.10",
             "ports": [{"port": 9000, "protocol": "TCP"}]},
        ],
    },
    "gamma": {
        "ansible_connection": "ssh",
        "ansible_host": IPS["gamma"],
        "ansible_user": "root",
        "ansible_ssh_private_key_file": KEY,
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "palisade_node": {"ipv4": IPS["gamma"]},
    },
}
NETNS = sorted(["%s-fabric" % PREFIX, "%s-h-alpha" % PREFIX, "%s-h-beta" % PREFIX, "%s-h-gamma" % PREFIX,
                "%s-e-default-web" % PREFIX, "%s-e-shop-plain" % PREFIX, "%s-e-default-api" % PREFIX])


# --- helpers -----------------------------------------------------------------------------------

class Run(object):
    """A lab.yml run; ``changed`` is the count of localhost, the one host lab.yml runs on."""

    def __init__(self, run):
        self.rc, self.out, self.err = run.rc, run.out, run.err
        self.changed = run.recap["localhost"]["changed"] if "localhost" in run.recap else None

    def __repr__(self):
        return "rc=%s\n--- stdout\n%s\n--- stderr\n%s" % (self.rc, self.out[-8000:], self.err[-4000:])


def lab_yml(inventory, state, *args, **kwargs):
    return Run(playbook("lab.yml", inventory, "-e", "lab_state=%s" % state, *args, check=kwargs.get("check", True)))


def in_netns(ns, source, *args):
    """Run a Python snippet inside a namespace (tests only; the module never shells out)."""
    return sh("ip", "netns", "exec", ns, "/usr/bin/python3", "-c", textwrap.dedent(source), *args)


def root_state():
    return {
        "links": [re.sub(r"^\d+: ", "", line).split("\\")[0].strip()
                  for line in sh("ip", "-o", "link", "show").splitlines()],
        "routes": [line.strip() for line in sh("ip", "route", "show", "table", "all").splitlines()]
        + [line.strip() for line in sh("ip", "-6", "route", "show", "table", "all").splitlines()],
        "addrs": [line.strip() for line in sh("ip", "-o", "addr", "show").splitlines()],
    }


def ours(line, prefix=PREFIX):
    return prefix in line or any(re.search(r"\b%s\b" % re.escape(ip), line) for ip in IPS.values())


def other_lab(line):
    """A line of another lab running concurrently (its <prefix>-ctl and routes over it)."""
    return re.search(r"\b[\w.]+-ctl\b", line) is not None and PREFIX not in line


def lab_pids(state_dir=STATE_DIR):
    pids = {}
    for entry in os.listdir(state_dir):
        if entry.endswith(".pid"):
            with open(os.path.join(state_dir, entry)) as handle:
                pids[entry] = int(handle.read().strip())
    return pids


def sctp_supported():
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132).close()
        return True
    except OSError:
        return False


PING = """
import os, socket, struct, sys, time
def csum(data):
    data += b"\\0" * (len(data) % 2)
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
dst = sys.argv[1]
ident = os.getpid() & 0xffff
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sock.settimeout(1.0)
for seq in range(5):
    body = b"palisade-lab"
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    sock.sendto(struct.pack("!BBHHH", 8, 0, csum(hdr + body), ident, seq) + body, (dst, 0))
    end = time.time() + 1.0
    while time.time() < end:
        try:
            data, peer = sock.recvfrom(2048)
        except socket.timeout:
            break
        ihl = (data[0] & 0x0f) * 4
        kind, _code, _sum, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
        if kind == 0 and rid == ident and peer[0] == dst:
            print("reply from", peer[0])
            sys.exit(0)
sys.exit("no echo reply from %s" % dst)
"""


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def baseline():
    return root_state()


@pytest.fixture(scope="module")
def lab(lab_factory, baseline):  # pylint: disable=unused-argument
    """The lab, up: its inventory and the runs of lab.yml that made it."""
    made = lab_factory(PREFIX, HOSTS)
    return {"inventory": made.inventory, "runs": [Run(made.first_up)]}


# --- tests ----------------------------------------------------------------------------------------

def test_check_mode_on_a_fresh_prefix_changes_nothing(tmp_path, baseline):
    inventory = Lab(tmp_path, CHECK_PREFIX, copy.deepcopy(HOSTS)).inventory
    run = lab_yml(inventory, "present", "--check", "--diff")
    assert run.changed and run.changed > 0, run  # it reports what it would do ...
    assert "+netns %s-fabric (fabric)" % CHECK_PREFIX in run.out  # the diff's after
    assert "+ netns %s-fabric (fabric)" % CHECK_PREFIX in run.out  # its changes
    # ... and does none of it.
    assert not [n for n in netns_names() if n.startswith(CHECK_PREFIX + "-")]
    after = root_state()
    assert not [line for key in after for line in after[key] if CHECK_PREFIX in line]
    assert not os.path.exists("/var/lib/palisade-lab/%s" % CHECK_PREFIX)


def test_present_creates_every_namespace_and_only_the_ctl_veth_in_root(lab, baseline):
    assert set(NETNS) <= set(netns_names())
    root = root_state()
    links = [line for line in root["links"] if ours(line)]
    assert len(links) == 1 and links[0].startswith("%s-ctl@" % PREFIX), links
    routes = sorted(line for line in root["routes"] if ours(line) and "table local" not in line)
    assert routes == sorted("%s dev %s-ctl proto static scope link src 169.254.199.1" % (ip, PREFIX)
                            for ip in IPS.values()), routes
    # nothing that existed before was changed or removed
    for key in ("links", "routes"):
        missing = [line for line in baseline[key] if line not in root[key] and not other_lab(line)]
        assert not missing, (key, missing)
    # the lab does not plumb endpoints: they hold nothing but lo
    for ns in NETNS:
        if "-e-" in ns:
            assert [line.split(":")[1].strip() for line in sh("ip", "-n", ns, "-o", "link").splitlines()] == ["lo"]
            assert sh("ip", "-n", ns, "-4", "route", "show").strip() == ""


def test_hosts_carry_their_address_routes_and_forwarding(lab):
    ns = "%s-h-alpha" % PREFIX
    assert "inet %s/32" % IPS["alpha"] in sh("ip", "-n", ns, "-o", "-4", "addr", "show", "dev", "eth0")
    routes = sorted(line.strip() for line in sh("ip", "-n", ns, "-4", "route", "show").splitlines())
    assert routes == sorted("%s dev eth0 proto static scope link" % ip
                            for ip in ["169.254.199.1", IPS["beta"], IPS["gamma"]])
    assert sh("ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1"


@pytest.mark.parametrize("src, dst", [("alpha", "beta"), ("beta", "gamma"), ("gamma", "alpha")])
def test_hosts_ping_each_other_over_the_underlay(lab, src, dst):
    result = in_netns("%s-h-%s" % (PREFIX, src), PING, IPS[dst])
    assert "reply from %s" % IPS[dst] in result


def test_endpoint_http_answers_200_for_any_method(lab):
    out = in_netns("%s-e-default-web" % PREFIX, """
        import http.client, json
        conn = http.client.HTTPConnection("127.0.0.1", 8080, timeout=5)
        seen = []
        for method, path in [("GET", "/"), ("POST", "/any/path?q=1"), ("OPTIONS", "*")]:
            conn.request(method, path, body=b"data" if method == "POST" else None)
            r = conn.getresponse()
            seen.append([r.status, r.read().decode()])
        print(json.dumps(seen))
    """)
    seen = json.loads(out)
    assert [pair[0] for pair in seen] == [200, 200, 200]
    assert seen[1][1].startswith("palisade-lab endpoint default/web: POST /any/path?q=1 -> 200")


def test_endpoint_without_ports_serves_http_on_80(lab):
    out = in_netns("%s-e-shop-plain" % PREFIX, """
        import urllib.request
        print(urllib.request.urlopen("http://127.0.0.1:80/", timeout=5).status)
    """)
    assert out.strip() == "200"


def test_endpoint_udp_port_echoes(lab):
    out = in_netns("%s-e-default-web" % PREFIX, """
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(5)
        s.sendto(b"echo me", ("127.0.0.1", 5353))
        print(s.recvfrom(100)[0].decode())
    """)
    assert out.strip() == "echo me"


def test_sctp_port_is_skipped_with_a_warning_when_the_kernel_lacks_it(lab):
    first = lab["runs"][0]
    warning = "endpoint default/web: port 3868/SCTP is not served: the running kernel does not support SCTP"
    if sctp_supported():
        assert warning not in first.out + first.err
        listening = sh("ip", "netns", "exec", "%s-e-default-web" % PREFIX, "cat", "/proc/net/sctp/eps")
        assert " 3868 " in listening
    else:
        assert warning in re.sub(r"\s+", " ", first.out + first.err)


def test_ssh_host_is_reachable_and_sees_its_namespace_and_the_machine_bpffs(lab):
    script = "ls /sys/class/net; stat -f -c %T /sys/fs/bpf; stat -c '%d %i' /sys/fs/bpf"
    run = sh("ssh", "-i", KEY, *(SSH_OPTS + ["root@%s" % IPS["gamma"], script]))
    lines = run.split()
    assert lines[:2] == ["eth0", "lo"], run  # the host namespace's sysfs, not the machine's
    assert lines[2] == "bpf_fs"
    assert " ".join(lines[3:5]) == sh("stat", "-c", "%d %i", "/sys/fs/bpf").strip()
    sh("ssh", "-i", KEY, *(SSH_OPTS + ["root@%s" % IPS["gamma"], "true"]))  # fails unless ssh exits 0


def test_ansible_manages_the_ssh_host(lab):
    run = subprocess.run([os.path.join(BIN, "ansible"), "-i", lab["inventory"], "gamma", "-m", "ansible.builtin.command",
                          "-a", "cat /proc/net/dev"], capture_output=True, text=True, env=env(), cwd=REPO, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "eth0:" in run.stdout and "ifb0" not in run.stdout


def test_second_present_changes_nothing(lab):
    run = lab_yml(lab["inventory"], "present")
    assert run.changed == 0, run


def test_present_repairs_drift(lab):
    pidfile = os.path.join(STATE_DIR, "server-%s-e-default-api.pid" % PREFIX)
    with open(pidfile) as handle:
        old = int(handle.read())
    os.kill(old, 15)
    sh("ip", "-n", "%s-h-beta" % PREFIX, "route", "del", IPS["alpha"])
    sh("ip", "-n", "%s-h-gamma" % PREFIX, "link", "set", "eth0", "down")
    run = lab_yml(lab["inventory"], "present", "--diff")
    assert run.changed == 1, run
    assert "+server default/api in %s-e-default-api: tcp/9000" % PREFIX in run.out
    assert "+route %s-h-beta: %s/32 dev eth0 scope link proto static" % (PREFIX, IPS["alpha"]) in run.out
    # the changes: exactly the three repairs
    assert "+ route %s-h-beta: %s/32 dev eth0 scope link proto static" % (PREFIX, IPS["alpha"]) in run.out
    assert "+ server default/api in %s-e-default-api: tcp/9000" % PREFIX in run.out
    assert "~ update veth %s-h-gamma/eth0" % PREFIX in run.out
    with open(pidfile) as handle:
        assert int(handle.read()) != old
    in_netns("%s-h-beta" % PREFIX, PING, IPS["alpha"])
    sh("ssh", "-i", KEY, *(SSH_OPTS + ["root@%s" % IPS["gamma"], "true"]))  # fails unless ssh exits 0
    assert lab_yml(lab["inventory"], "present").changed == 0


def test_absent_removes_everything_the_lab_made_and_nothing_else(lab, baseline):
    # Keep an ssh session open across absent: sshd's children are the lab's too.
    session = subprocess.Popen(["ssh", "-i", KEY] + SSH_OPTS + ["root@%s" % IPS["gamma"], "sleep 300"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pids = lab_pids()
        assert len(pids) == 4, pids  # three servers and sshd
        assert all(alive(pid) for pid in pids.values())
        run = lab_yml(lab["inventory"], "absent", "--diff")
        assert run.changed == 1, run
        assert "-netns %s-fabric (fabric)" % PREFIX in run.out
        assert "- netns %s-fabric (fabric)" % PREFIX in run.out
        assert not [pid for pid in pids.values() if alive(pid)]
        assert session.wait(timeout=30) != 0  # its server side is gone
    finally:
        if session.poll() is None:
            session.kill()
    assert not [n for n in netns_names() if n.startswith(PREFIX + "-")]
    assert not os.path.exists(STATE_DIR)
    after = root_state()
    for key in after:
        assert not [line for line in after[key] if ours(line)], (key, after[key])
    for key in ("links", "routes", "addrs"):
        missing = [line for line in baseline[key] if line not in after[key] and not other_lab(line)]
        assert not missing, (key, missing)


def test_absent_twice_changes_nothing(lab):
    lab_yml(lab["inventory"], "absent")
    run = lab_yml(lab["inventory"], "absent")
    assert run.changed == 0, run
