# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's planning (module_utils/_lab/plan.py), pure: names and
validation, the objects a lab consists of, and the actions between two
states."""

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils import _naming as naming
from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import ROUTE_PROTOCOL
from ansible_collections.palisade.ebpf.plugins.module_utils._lab import plan as lab
from tests.support.lab_specs import ENDPOINTS, HOSTS, copies, desired, find, make_spec


def ops(actions):
    return [(a.op, a.obj.kind, a.obj.ident) for a in actions]


# --- names and validation ------------------------------------------------------------------

@pytest.mark.parametrize("prefix", ["pal", "plt12345", "a", "x" * lab.PREFIX_MAX, "lab.1_b-c"])
def test_valid_prefixes(prefix):
    assert lab.validate_prefix(prefix) == prefix
    assert len(lab.ctl_ifname(prefix)) <= naming.IFNAME_MAX


@pytest.mark.parametrize("prefix", ["", "x" * (lab.PREFIX_MAX + 1), "-pal", "pa l", "pa/l"])
def test_invalid_prefixes_are_rejected_with_the_rule(prefix):
    with pytest.raises(lab.LabError, match="lab prefix"):
        lab.validate_prefix(prefix)


def test_bridge_port_names_fit_are_deterministic_and_distinct():
    names = set()
    for prefix in ("pal", "x" * lab.PREFIX_MAX):
        for host in ("node1", "node2", "a-very-long-inventory-hostname.example.org"):
            name = lab.bridge_port_ifname(prefix, host)
            assert len(name) <= naming.IFNAME_MAX
            assert name == lab.bridge_port_ifname(prefix, host)
            assert name.startswith(prefix[:7])
            names.add(name)
    assert len(names) == 6


def test_spec_derives_names_from_naming_rules():
    spec = make_spec()
    assert spec.fabric == naming.fabric_netns("pal") == "pal-fabric"
    assert spec.ctl == "pal-ctl"
    assert [h.netns for h in spec.hosts] == ["pal-h-node1", "pal-h-node2", "pal-h-node3"]
    eps = dict((e.key, e) for e in spec.endpoints)
    assert eps["default/deathstar-1"].netns == "pal-e-default-deathstar-1"
    assert eps["kube/dns"].netns == "dns-ns"
    assert spec.state_dir == "/var/lib/palisade-lab/pal"
    assert spec.client_key == "/var/lib/palisade-lab/pal/id_ed25519"
    assert spec.server_script == "/var/lib/palisade-lab/pal/palisade_lab_server.py"


def test_ports_default_to_80_tcp_and_are_normalised():
    spec = make_spec()
    eps = dict((e.key, e) for e in spec.endpoints)
    assert eps["default/tiefighter"].ports == ((80, "TCP"),)
    assert eps["kube/dns"].ports == ((3868, "SCTP"), (53, "TCP"), (53, "UDP"))


@pytest.mark.parametrize("hosts, endpoints, message", [
    ([{"name": "a", "ipv4": "10.0.0.1"}, {"name": "a", "ipv4": "10.0.0.2"}], [], "host a is listed twice"),
    ([{"name": "a", "ipv4": "10.0.0.1"}, {"name": "b", "ipv4": "10.0.0.1"}], [], "also used by host a"),
    ([{"name": "a", "ipv4": "10.0.0.300"}], [], "not an IPv4 address"),
    ([{"name": "a", "ipv4": "169.254.199.1"}], [], "reserved for the controller"),
    ([{"name": "a/b", "ipv4": "10.0.0.1"}], [], "cannot be used as a network namespace name"),
    ([{"ipv4": "10.0.0.1"}], [], "needs a name"),
    ([{"name": "a", "ipv4": "10.0.0.1"}], [{"host": "zz", "name": "e"}], "host 'zz' is not one of"),
    ([{"name": "a", "ipv4": "10.0.0.1"}], [{"name": "e"}, {"name": "e", "namespace": "default"}], "declared twice"),
    ([{"name": "a", "ipv4": "10.0.0.1"}], [{"name": "e", "netns": "pal-h-a"}], "already used by host a"),
    ([{"name": "a", "ipv4": "10.0.0.1"}], [{"name": "e", "netns": "x"}, {"name": "f", "netns": "x"}],
     "already used by endpoint default/e"),
    ([], [{"name": "e", "ports": [{"port": 0}]}], "out of range"),
    ([], [{"name": "e", "ports": [{"port": "http"}]}], "is not a number"),
    ([], [{"name": "e", "ports": [{"port": 1, "protocol": "ICMP"}]}], "not one of TCP, UDP, SCTP"),
])
def test_invalid_inputs_name_the_culprit(hosts, endpoints, message):
    with pytest.raises(lab.LabError, match=message):
        make_spec(hosts, endpoints)


def test_state_dir_must_be_absolute_and_not_root():
    for bad in ("relative/dir", "/", "/.."):
        with pytest.raises(lab.LabError, match="state_dir"):
            make_spec(state_dir=bad)


# --- desired objects ---------------------------------------------------------------------------

def test_root_namespace_gets_only_the_ctl_veth_its_address_and_node_routes():
    root = [o for o in desired() if o.kind in ("veth", "address", "route", "link", "bridge", "sysctl")
            and o.ident[0] == ""]
    assert sorted(o.describe() for o in root) == sorted([
        "veth root/pal-ctl <-> pal-fabric/ctl (master br0, up, ipv6 off)",
        "address root/pal-ctl 169.254.199.1/32",
        "route root: 192.0.2.11/32 dev pal-ctl scope link proto static src 169.254.199.1",
        "route root: 192.0.2.12/32 dev pal-ctl scope link proto static src 169.254.199.1",
        "route root: 192.0.2.13/32 dev pal-ctl scope link proto static src 169.254.199.1",
    ])


def test_each_host_has_eth0_its_address_onlink_routes_and_forwarding():
    objs = desired()
    node1 = [o.describe() for o in objs if o.ident[0] == "pal-h-node1"]
    assert sorted(node1) == sorted([
        "netns pal-h-node1 (host node1)",
        "link pal-h-node1/lo up",
        "veth pal-h-node1/eth0 <-> pal-fabric/%s (master br0, up)" % lab.bridge_port_ifname("pal", "node1"),
        "address pal-h-node1/eth0 192.0.2.11/32",
        "route pal-h-node1: 169.254.199.1/32 dev eth0 scope link proto static",
        "route pal-h-node1: 192.0.2.12/32 dev eth0 scope link proto static",
        "route pal-h-node1: 192.0.2.13/32 dev eth0 scope link proto static",
        "sysctl pal-h-node1: net.ipv4.ip_forward = 1",
    ])


def test_lab_routes_never_use_the_product_protocol():
    routes = [o for o in desired() if o.kind == "route"]
    assert routes and all(o.attrs["proto"] == "static" for o in routes)
    assert all(o.attrs["proto"] != str(ROUTE_PROTOCOL) for o in routes)


def test_endpoints_are_empty_namespaces_with_a_server_and_nothing_plumbed():
    objs = desired()
    ep_ns = "pal-e-default-deathstar-1"
    inside = sorted(o.describe() for o in objs if o.ident[0] == ep_ns or o.attrs.get("netns") == ep_ns)
    assert inside == [
        "link pal-e-default-deathstar-1/lo up",
        "netns pal-e-default-deathstar-1 (endpoint default/deathstar-1)",
        "server default/deathstar-1 in pal-e-default-deathstar-1: tcp/80 [script rev1]",
    ]
    # Nothing refers to an endpoint address or a veth into an endpoint.
    text = "\n".join(lab.describe_all(objs))
    assert "10.1." not in text and "lxc" not in text


def test_sctp_is_skipped_with_a_warning_when_the_kernel_lacks_it():
    objs, warnings = lab.desired_objects(make_spec(protocols=("TCP", "UDP")))
    assert find(objs, "server", "kube/dns").attrs["listen"] == ("tcp/53", "udp/53")
    assert warnings == ["endpoint kube/dns: port 3868/SCTP is not served: the running kernel does not support SCTP"]


def test_sctp_is_served_when_the_kernel_has_it():
    objs, warnings = lab.desired_objects(make_spec(protocols=("TCP", "UDP", "SCTP")))
    assert find(objs, "server", "kube/dns").attrs["listen"] == ("sctp/3868", "tcp/53", "udp/53")
    assert warnings == []


def test_endpoint_with_nothing_servable_gets_no_server_and_says_so():
    spec = make_spec(endpoints=[{"name": "x", "ports": [{"port": 9, "protocol": "SCTP"}]}])
    objs, warnings = lab.desired_objects(spec)
    assert not [o for o in objs if o.kind == "server"]
    assert len(warnings) == 2 and "no port can be served" in warnings[1]


def test_ssh_hosts_get_sshd_and_the_lab_gets_keys():
    objs = desired()
    sshd = [o for o in objs if o.kind == "sshd"]
    assert [o.ident[0] for o in sshd] == ["node3"]
    assert sshd[0].attrs["listen"] == "192.0.2.13:22"
    assert sshd[0].attrs["netns"] == "pal-h-node3"
    keys = sorted(o.ident[0] for o in objs if o.kind == "keypair")
    assert keys == ["/var/lib/palisade-lab/pal/id_ed25519", "/var/lib/palisade-lab/pal/ssh_host_ed25519_key"]
    no_ssh = desired(make_spec(hosts=[dict(h, ssh=False) for h in HOSTS]))
    assert not [o for o in no_ssh if o.kind in ("sshd", "keypair", "authorized_keys")]


def test_sshd_config_keeps_everything_in_state_dir():
    spec = make_spec()
    host = [h for h in spec.hosts if h.ssh][0]
    config = lab.sshd_config(spec, host).splitlines()
    for line in [
        "ListenAddress 192.0.2.13:22",
        "HostKey /var/lib/palisade-lab/pal/ssh_host_ed25519_key",
        "PidFile /var/lib/palisade-lab/pal/sshd-node3.pid",
        "AuthorizedKeysFile /var/lib/palisade-lab/pal/authorized_keys",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "PasswordAuthentication no",
    ]:
        assert line in config


def test_server_argv_round_trips_and_other_commands_are_not_servers():
    spec = make_spec()
    ep = [e for e in spec.endpoints if e.key == "kube/dns"][0]
    argv = lab.server_argv(spec, ep, ("tcp/53", "udp/53"))
    assert argv[:2] == ["/usr/bin/python3", spec.server_script]
    parsed = lab.parse_server_argv(argv)
    assert parsed["endpoint"] == "kube/dns"
    assert parsed["listen"] == ("tcp/53", "udp/53")
    assert parsed["pidfile"] == spec.server_pidfile(ep)
    assert parsed["rev"] == "rev1"
    assert lab.parse_server_argv(["/usr/sbin/sshd", "-f", "x"]) is None
    assert lab.parse_server_argv(["/usr/bin/python3", "other.py", "--verbose"]) is None
    assert lab.parse_server_argv(["/usr/bin/python3", spec.server_script, "--endpoint", "a/b"]) is None


# --- planning ------------------------------------------------------------------------------------

def test_converged_lab_needs_nothing():
    objs = desired()
    assert lab.plan_actions(objs, copies(objs)) == []


def test_fresh_lab_is_created_in_dependency_order():
    objs = desired()
    actions = lab.plan_actions(objs, [])
    assert set(a.op for a in actions) == {"create"}
    kinds = [a.obj.kind for a in actions]
    assert kinds == sorted(kinds, key=lab.KIND_ORDER.index)
    assert kinds[0] == "state_dir" and kinds[-1] == "sshd"
    assert len(actions) == len(objs)


def test_absent_stops_processes_then_deletes_only_containers():
    objs = desired()
    actions = lab.plan_actions([], copies(objs))
    assert set(a.op for a in actions) == {"delete"}
    described = [(a.obj.kind, a.obj.ident[0]) for a in actions]
    # Processes first, state_dir last; what lives inside a namespace or on a
    # deleted veth goes with it, except the root-namespace veth which is
    # deleted explicitly (its fabric end may outlive a busy namespace).
    assert described[:4] == [("sshd", "node3"), ("server", "kube/dns"), ("server", "default/tiefighter"),
                             ("server", "default/deathstar-1")]
    assert ("veth", "") in described
    assert described[-1] == ("state_dir", "/var/lib/palisade-lab/pal")
    assert not [d for d in described if d[0] in ("address", "route", "link", "sysctl", "bridge", "keypair")]
    assert sorted(d[1] for d in described if d[0] == "netns") == sorted(
        ["pal-fabric", "pal-h-node1", "pal-h-node2", "pal-h-node3", "pal-e-default-deathstar-1",
         "pal-e-default-tiefighter", "dns-ns"])
    assert lab.after_objects([], copies(objs)) == []


def test_absent_keeps_an_adopted_namespace_but_stops_its_server():
    objs = copies(desired())
    for obj in objs:
        if obj.kind == "netns" and obj.ident[0] == "dns-ns":
            obj.meta["keep"] = True
    actions = lab.plan_actions([], objs)
    deleted = [(a.obj.kind, a.obj.ident[0]) for a in actions]
    assert ("netns", "dns-ns") not in deleted
    assert ("server", "kube/dns") in deleted
    after = [o.describe() for o in lab.after_objects([], objs)]
    assert after == ["netns dns-ns (endpoint kube/dns)", "link dns-ns/lo up"]


def test_drift_is_repaired_by_the_smallest_action():
    objs = desired()
    seen = copies(objs)
    find(seen, "bridge", "pal-fabric").attrs["up"] = False
    find(seen, "sysctl", "pal-h-node2").attrs["value"] = "0"
    find(seen, "server", "default/deathstar-1").attrs["listen"] = ("tcp/8080",)
    seen.remove(find(seen, "route", "pal-h-node1", "192.0.2.12/32"))
    assert ops(lab.plan_actions(objs, seen)) == [
        ("update", "bridge", ("pal-fabric", "br0")),
        ("create", "route", ("pal-h-node1", "192.0.2.12/32")),
        ("update", "sysctl", ("pal-h-node2", "net.ipv4.ip_forward")),
        ("restart", "server", ("default/deathstar-1",)),
    ]


def test_a_replaced_veth_takes_its_address_and_routes_along():
    objs = desired()
    seen = copies(objs)
    find(seen, "veth", "pal-h-node2", "eth0").attrs["peer"] = "(unpaired)"
    planned = ops(lab.plan_actions(objs, seen))
    assert planned == [
        ("replace", "veth", ("pal-h-node2", "eth0")),
        ("create", "address", ("pal-h-node2", "eth0", "192.0.2.12/32")),
        ("create", "route", ("pal-h-node2", "169.254.199.1/32")),
        ("create", "route", ("pal-h-node2", "192.0.2.11/32")),
        ("create", "route", ("pal-h-node2", "192.0.2.13/32")),
    ]


def test_new_script_revision_restarts_every_server():
    seen = copies(desired())
    planned = ops(lab.plan_actions(desired(make_spec(server_rev="rev2")), seen))
    assert planned == [("restart", "server", (key,)) for key in
                       ("default/deathstar-1", "default/tiefighter", "kube/dns")]


def test_sshd_restarts_on_config_change_and_on_a_new_host_key():
    objs = desired()
    seen = copies(objs)
    find(seen, "sshd", "node3").attrs["config"] = "old"
    assert ops(lab.plan_actions(objs, seen)) == [("restart", "sshd", ("node3",))]
    seen = copies(objs)
    seen.remove(find(seen, "keypair", "/var/lib/palisade-lab/pal/ssh_host_ed25519_key"))
    assert ops(lab.plan_actions(objs, seen)) == [
        ("create", "keypair", ("/var/lib/palisade-lab/pal/ssh_host_ed25519_key",)),
        ("restart", "sshd", ("node3",)),
    ]


def test_a_new_client_key_rewrites_authorized_keys():
    objs = desired()
    seen = copies(objs)
    seen.remove(find(seen, "keypair", "/var/lib/palisade-lab/pal/id_ed25519"))
    assert ops(lab.plan_actions(objs, seen)) == [
        ("create", "keypair", ("/var/lib/palisade-lab/pal/id_ed25519",)),
        ("create", "authorized_keys", ("/var/lib/palisade-lab/pal/authorized_keys",)),
    ]


def test_removed_host_and_endpoint_are_cleaned_up_everywhere():
    seen = copies(desired())
    smaller = make_spec(hosts=HOSTS[:2], endpoints=ENDPOINTS[:1])
    actions = lab.plan_actions(desired(smaller), seen)
    assert ops(actions) == [
        ("delete", "sshd", ("node3",)),
        ("delete", "server", ("kube/dns",)),
        ("delete", "server", ("default/tiefighter",)),
        ("delete", "route", ("pal-h-node2", "192.0.2.13/32")),
        ("delete", "route", ("pal-h-node1", "192.0.2.13/32")),
        ("delete", "route", ("", "192.0.2.13/32")),
        ("delete", "netns", ("pal-h-node3",)),
        ("delete", "netns", ("pal-e-default-tiefighter",)),
        ("delete", "netns", ("dns-ns",)),
    ]
    # The ssh keys are generated once and stay until absent.
    after = lab.after_objects(desired(smaller), seen)
    assert [o.kind for o in after].count("keypair") == 2


def test_a_foreign_route_is_refused_never_replaced_or_deleted():
    objs = desired()
    foreign = lab.LabObject("route", ("", "192.0.2.11/32"), {"dev": "eth0", "scope": "link", "proto": "boot"},
                            {"foreign": "a route to 192.0.2.11/32 already exists"})
    seen = [o for o in copies(objs) if o.key != foreign.key] + [foreign]
    with pytest.raises(lab.LabError, match="already exists"):
        lab.plan_actions(objs, seen)
    # When the lab does not want it (absent), it is simply not the lab's.
    assert foreign.key not in [a.obj.key for a in lab.plan_actions([], seen)]
    assert foreign.describe() not in lab.describe_all(lab.after_objects([], seen))


def test_objects_are_described_one_sorted_line_each():
    objs = desired()
    lines = lab.describe_all(reversed(objs))
    assert len(lines) == len(objs)
    assert lines[0] == "state_dir /var/lib/palisade-lab/pal"
    assert lines[-1].startswith("sshd node3 in pal-h-node3: 192.0.2.13:22 [config ")


def test_change_lines_say_create_delete_or_what_changed_in_place():
    objs = desired()
    seen = copies(objs)
    find(seen, "sysctl", "pal-h-node2").attrs["value"] = "0"
    seen = [o for o in seen if not (o.kind == "route" and o.ident == ("pal-h-node1", "192.0.2.12/32"))]
    seen.append(lab.LabObject("netns", "pal-e-default-gone", {"role": "endpoint default/gone"}))
    lines = [lab.change_line(a) for a in lab.plan_actions(objs, seen)]
    assert lines == [
        "- netns pal-e-default-gone (endpoint default/gone)",
        "+ route pal-h-node1: 192.0.2.12/32 dev eth0 scope link proto static",
        "~ update sysctl pal-h-node2: net.ipv4.ip_forward = 1",
    ]
    seen = copies(desired(make_spec(server_rev="rev0")))
    assert [lab.change_line(a) for a in lab.plan_actions(objs, seen)][0] == (
        "~ restart server default/deathstar-1 in pal-e-default-deathstar-1: tcp/80 [script rev1]")
