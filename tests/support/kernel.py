# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the tests that touch the kernel (tests/integration): the one
way to run a harness command, scratch network namespaces, palisade.ebpf
modules run ad hoc the way Ansible runs them, and read-only views of a lab's
namespaces. tests/integration/conftest.py builds its fixtures on these.

Harness commands set up and inspect; the code under test never shells out.
"""

import json
import os
import re
import subprocess

from tools.fleetlab import BIN, env

TARGET_PYTHON = "/usr/bin/python3"   # the modules' interpreter on a host: it has bcc and pyroute2


def sh(*cmd, input=None, timeout=120):  # pylint: disable=redefined-builtin
    """Run a harness command -> its stdout; the test fails, showing the
    output, unless the command exits 0."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True, input=input, timeout=timeout, check=False)
    assert proc.returncode == 0, "%s failed (exit %d):\n%s%s" % (
        " ".join(cmd), proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc.stdout


def netns_list():
    """Names of the network namespaces under /run/netns, sorted."""
    return sorted(line.split()[0] for line in sh("ip", "netns", "list").splitlines() if line.strip())


def target_has(module):
    """Whether the target interpreter can import ``module``."""
    try:
        return subprocess.run([TARGET_PYTHON, "-c", "import %s" % module], capture_output=True, check=False).returncode == 0
    except OSError:
        return False


def run_module(netns_path, module, args, check=False, diff=False, interpreter=TARGET_PYTHON, extra_env=None):
    """palisade.ebpf.<module> run ad hoc inside the network namespace at
    ``netns_path`` -> (rc, result, output). ``result`` is the module's result
    as the default callback prints it; that callback drops 'failed', which is
    put back from the FAILED! status."""
    cmd = ["nsenter", "--net=" + netns_path, os.path.join(BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=" + interpreter, "-m", "palisade.ebpf." + module, "-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    run_env = env(dict(ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_CALLBACK_RESULT_FORMAT="json",
                       ANSIBLE_DEPRECATION_WARNINGS="0", **(extra_env or {})))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, cwd="/", check=False)
    output = proc.stdout + proc.stderr
    match = re.search(r"^localhost \| (SUCCESS|CHANGED|FAILED!) => ", output, re.M)
    assert match, "no result in ansible output (rc=%d):\n%s" % (proc.returncode, output)
    result = json.JSONDecoder().raw_decode(output[match.end():])[0]
    result["failed"] = match.group(1) == "FAILED!"
    return proc.returncode, result, output


class Netns(object):
    """A scratch network namespace of the test's own: created with lo up,
    checked to be another namespace than the one the tests run in, deleted
    by name. Subclasses add what a test file plumbs into it."""

    def __init__(self, name):
        self.name = name
        self.path = "/run/netns/" + name

    def create(self):
        sh("ip", "netns", "add", self.name)
        # Guard: what is meant for the scratch namespace must never reach the tests' own.
        assert os.stat(self.path).st_ino != os.stat("/proc/self/ns/net").st_ino, self.name
        self.ip("link", "set", "lo", "up")
        return self

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)

    def ip(self, *args):
        """iproute2 inside the namespace: test setup and 'administrator' actions only."""
        return sh("ip", "-n", self.name, *args)

    def command(self, *cmd):
        """``cmd`` entering the namespace with nsenter (unlike ``ip netns
        exec``, which remounts /sys, it keeps bpffs visible)."""
        return ["nsenter", "--net=" + self.path] + list(cmd)

    def sh(self, *cmd, **kwargs):
        return sh(*self.command(*cmd), **kwargs)

    def module(self, module, args, check=False, diff=False, interpreter=TARGET_PYTHON, extra_env=None):
        """palisade.ebpf.<module> run ad hoc inside the namespace -> (rc, result, output)."""
        assert os.path.exists(self.path), "namespace %s is gone; refusing to run outside it" % self.name
        return run_module(self.path, module, args, check=check, diff=diff, interpreter=interpreter, extra_env=extra_env)


def lab_snapshot(lab):
    """Links, addresses, routes and neighbours of every namespace of the lab."""
    state = {}
    for ns in netns_list():
        if ns.startswith(lab.prefix + "-"):
            state[ns] = {
                "links": sh("ip", "-n", ns, "-o", "link", "show"),
                "addrs": sh("ip", "-n", ns, "-o", "addr", "show"),
                "routes": sh("ip", "-n", ns, "route", "show", "table", "all"),
                "neigh": sh("ip", "-n", ns, "neigh", "show", "nud", "permanent"),
            }
    return state
