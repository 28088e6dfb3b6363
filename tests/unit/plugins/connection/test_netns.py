"""The netns connection plugin: namespace resolution and command wrapping."""

import io
import shlex
from unittest import mock

import pytest
from ansible.errors import AnsibleConnectionFailure
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader

from ansible_collections.palisade.ebpf.plugins.connection import netns as netns_plugin


def connection(**var_options):
    conn = connection_loader.get("palisade.ebpf.netns", PlayContext(), io.StringIO())
    conn.set_options(var_options=var_options)
    return conn


def test_namespace_derived_from_hostname_and_prefix():
    conn = connection(inventory_hostname="node1", palisade_lab_prefix="lab7")
    assert conn._netns_path() == "/run/netns/lab7-h-node1"


def test_explicit_namespace_wins():
    assert connection(inventory_hostname="node1", ansible_netns="custom")._netns_path() == "/run/netns/custom"
    assert connection(inventory_hostname="node1", ansible_netns="/proc/1/ns/net")._netns_path() == "/proc/1/ns/net"


def test_missing_namespace_is_unreachable_not_a_crash():
    conn = connection(inventory_hostname="no-such-host-%d" % id(object()))
    with pytest.raises(AnsibleConnectionFailure, match="does not exist"):
        conn._connect()


def test_wrapped_command_enters_netns_and_remounts_sys():
    wrapped = netns_plugin.wrap_command("/run/netns/pal-h-node1", "echo 'hi there'")
    argv = shlex.split(wrapped)
    assert argv[:6] == ["nsenter", "--net=/run/netns/pal-h-node1", "--", "unshare", "--mount", "--propagation"]
    assert "mount -t sysfs sysfs /sys" in argv[9]
    assert argv[-2:] == ["/bin/sh", "echo 'hi there'"]


def test_exec_command_runs_the_wrapped_command():
    conn = connection(inventory_hostname="node1")
    conn._connected = True
    conn._netns = "/run/netns/pal-h-node1"
    with mock.patch("ansible.plugins.connection.local.Connection.exec_command", return_value=(0, b"", b"")) as run:
        conn.exec_command("true")
    sent = run.call_args[0][0]
    assert sent.startswith("nsenter --net=/run/netns/pal-h-node1 -- unshare --mount")
    assert sent.endswith("/bin/sh true")
