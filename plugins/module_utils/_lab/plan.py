# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning for the lab: what the lab should consist of, and how to get there.

Everything in this file is pure (no kernel, no filesystem, no processes), so
it is unit-testable without root.  The kernel/process side lives in
kernel.py (netlink, namespaces, sysctls) and processes.py (files, keys,
processes); reconcile.py glues observation, planning and execution together.

The lab is described as a set of *lab objects*.  An object has a kind, an
identity (its key) and a few attributes that describe the state the lab cares
about.  ``desired_objects`` derives the wanted set from the inputs, the
executors observe the current set in the same vocabulary, and
``plan_actions`` diffs the two into an ordered list of actions.  The same
objects, described one per line, are the module's ``before``/``after``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
import os
import re
from collections import namedtuple

from ansible_collections.palisade.ebpf.plugins.module_utils import _naming as naming
from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import LAB_STATE_ROOT

# --- names and numbers of the lab topology (docs/architecture.md "Lab topology") ---
STATE_ROOT = LAB_STATE_ROOT
BRIDGE_IFNAME = "br0"
HOST_IFNAME = "eth0"
CTL_FABRIC_IFNAME = "ctl"          # fabric-side end of <prefix>-ctl (only one per fabric)
CONTROLLER_ADDRESS = "169.254.199.1"
# Underlay routes are the lab's, not the product's: the product owns protocol
# _defaults.ROUTE_PROTOCOL (201) and purges what it owns, so the lab must never use it.
UNDERLAY_ROUTE_PROTO = "static"
ROUTE_SCOPE = "link"
FORWARDING_SYSCTL = "net.ipv4.ip_forward"
# A prefix becomes "<prefix>-ctl", which must fit IFNAMSIZ.
PREFIX_MAX = naming.IFNAME_MAX - len("-ctl")
PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

SERVER_SCRIPT_NAME = "palisade_lab_server.py"
SERVER_PYTHON = "/usr/bin/python3"
CLIENT_KEY_NAME = "id_ed25519"
HOST_KEY_NAME = "ssh_host_ed25519_key"
AUTHORIZED_KEYS_NAME = "authorized_keys"
RECORD_NAME = "lab.json"

PROTOCOLS = ("TCP", "UDP", "SCTP")
DEFAULT_PORTS = ((80, "TCP"),)

# Kinds in the order they are created; deletion runs in the reverse order.
KIND_ORDER = (
    "state_dir",
    "keypair",
    "authorized_keys",
    "netns",
    "bridge",
    "link",
    "veth",
    "address",
    "route",
    "sysctl",
    "server",
    "sshd",
)
PROCESS_KINDS = ("server", "sshd")
# Kinds never deleted on their own: properties of their namespace (lo up, a
# sysctl) go away with it, and the ssh keys are generated once and stay (the
# inventory points at the client key) until the state_dir goes.
UNDELETABLE_KINDS = ("link", "sysctl", "keypair", "authorized_keys")


class LabError(Exception):
    """An input or a situation the lab refuses to handle; the message says why."""


Host = namedtuple("Host", "name ipv4 ssh netns port_ifname")
Endpoint = namedtuple("Endpoint", "key host name namespace netns ports")


def _digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def short_hash(text, length=12):
    """Short content hash used to tag script/config revisions in the diff."""
    return _digest(text)[:length]


def default_state_dir(prefix):
    return os.path.join(STATE_ROOT, prefix)


def ctl_ifname(prefix):
    return "%s-ctl" % prefix


def bridge_port_ifname(prefix, host_name):
    """Fabric-side veth name of a host: the prefix (at most 7 chars) + hex of a hash.

    Only unique within the prefix's fabric namespace, which is all it needs to
    be; at least 8 hex digits remain, and ``LabSpec`` rejects the (unlikely)
    collision instead of guessing.
    """
    head = prefix[:7]
    return head + _digest("%s/%s" % (prefix, host_name))[: naming.IFNAME_MAX - len(head)]


def validate_prefix(prefix):
    if not prefix or len(prefix) > PREFIX_MAX or not PREFIX_RE.match(prefix):
        raise LabError(
            "lab prefix %r is not valid: it must be 1-%d characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (it names namespaces and the interface '<prefix>-ctl')"
            % (prefix, PREFIX_MAX)
        )
    return prefix


def _check_netns_name(name, what):
    if not name or "/" in name or name in (".", "..") or "\0" in name or re.search(r"\s", name):
        raise LabError("%s: %r cannot be used as a network namespace name" % (what, name))
    if len(name) > 255:
        raise LabError("%s: network namespace name %r is longer than 255 characters" % (what, name))


def _ipv4(value, what):
    try:
        return str(ipaddress.IPv4Address(u"%s" % (value,)))
    except (ipaddress.AddressValueError, ValueError):
        raise LabError("%s: %r is not an IPv4 address" % (what, value))


def normalize_ports(ports, what):
    """[(port, PROTOCOL)] sorted and de-duplicated; no ports means 80/TCP."""
    result = set()
    for index, entry in enumerate(ports or []):
        where = "%s ports[%d]" % (what, index)
        if not isinstance(entry, dict):
            raise LabError("%s: expected a mapping with 'port' and 'protocol', got %r" % (where, entry))
        try:
            port = int(entry.get("port"))
        except (TypeError, ValueError):
            raise LabError("%s: port %r is not a number" % (where, entry.get("port")))
        if not 1 <= port <= 65535:
            raise LabError("%s: port %d is out of range 1-65535" % (where, port))
        protocol = str(entry.get("protocol") or "TCP").upper()
        if protocol not in PROTOCOLS:
            raise LabError("%s: protocol %r is not one of %s" % (where, entry.get("protocol"), ", ".join(PROTOCOLS)))
        result.add((port, protocol))
    if not result:
        return DEFAULT_PORTS
    return tuple(sorted(result, key=lambda item: (item[1], item[0])))


def listen_spec(port, protocol):
    """Command-line form the server understands: 'tcp/80'."""
    return "%s/%d" % (protocol.lower(), port)


class LabSpec(object):
    """Validated inputs plus every name derived from them.

    ``hosts`` is a list of ``{name, ipv4, ssh}``; ``endpoints`` a list of
    ``{host, name, namespace, netns, ports: [{port, protocol}]}``.
    ``server_rev`` tags the server script's content (so servers restart when it
    changes); ``protocols`` is the set of transport protocols the running
    kernel supports.
    """

    def __init__(self, prefix, hosts, endpoints, state_dir=None, server_script=None,
                 server_rev="missing", protocols=("TCP", "UDP")):
        self.prefix = validate_prefix(prefix)
        self.state_dir = state_dir or default_state_dir(self.prefix)
        if not os.path.isabs(self.state_dir) or os.path.normpath(self.state_dir) == "/":
            raise LabError("state_dir %r must be an absolute path other than /" % (self.state_dir,))
        self.state_dir = os.path.normpath(self.state_dir)
        self.server_script = server_script or os.path.join(self.state_dir, SERVER_SCRIPT_NAME)
        self.server_rev = server_rev
        self.protocols = frozenset(p.upper() for p in protocols)
        self.fabric = naming.fabric_netns(self.prefix)
        self.ctl = ctl_ifname(self.prefix)
        self.hosts = self._hosts(hosts or [])
        self.endpoints = self._endpoints(endpoints or [])

    # -- validation --------------------------------------------------------------
    def _hosts(self, hosts):
        result, by_ip, by_port = [], {}, {}
        seen = set()
        for index, entry in enumerate(hosts):
            what = "hosts[%d]" % index
            name = entry.get("name") if isinstance(entry, dict) else None
            if not name:
                raise LabError("%s: a host needs a name" % what)
            what = "host %s" % name
            if name in seen:
                raise LabError("%s is listed twice" % what)
            seen.add(name)
            ipv4 = _ipv4(entry.get("ipv4"), "%s ipv4" % what)
            if ipv4 == CONTROLLER_ADDRESS:
                raise LabError("%s: %s is reserved for the controller's end of the lab" % (what, ipv4))
            if ipv4 in by_ip:
                raise LabError("%s: ipv4 %s is also used by host %s" % (what, ipv4, by_ip[ipv4]))
            by_ip[ipv4] = name
            netns = naming.host_netns(name, self.prefix)
            _check_netns_name(netns, what)
            port = bridge_port_ifname(self.prefix, name)
            if port in by_port:
                raise LabError(
                    "hosts %s and %s hash to the same fabric port name %s; use another lab prefix"
                    % (by_port[port], name, port)
                )
            by_port[port] = name
            result.append(Host(name, ipv4, bool(entry.get("ssh")), netns, port))
        return tuple(sorted(result, key=lambda h: h.name))

    def _endpoints(self, endpoints):
        hosts = dict((h.name, h) for h in self.hosts)
        reserved = dict((h.netns, "host %s" % h.name) for h in self.hosts)
        reserved[self.fabric] = "the lab fabric"
        result, keys = [], set()
        for index, entry in enumerate(endpoints):
            if not isinstance(entry, dict) or not entry.get("name"):
                raise LabError("endpoints[%d]: an endpoint needs a name" % index)
            ep = dict(entry)
            ep["namespace"] = ep.get("namespace") or "default"
            key = naming.endpoint_key(ep)
            what = "endpoint %s" % key
            if key in keys:
                raise LabError("%s is declared twice" % what)
            keys.add(key)
            host = ep.get("host")
            if host is not None and host not in hosts:
                raise LabError("%s: host %r is not one of the lab's hosts" % (what, host))
            netns = naming.endpoint_netns(ep, self.prefix)
            _check_netns_name(netns, what)
            if netns in reserved:
                raise LabError("%s: network namespace %s is already used by %s" % (what, netns, reserved[netns]))
            reserved[netns] = what
            ports = normalize_ports(ep.get("ports"), what)
            result.append(Endpoint(key, host, ep["name"], ep["namespace"], netns, ports))
        return tuple(sorted(result, key=lambda e: e.key))

    # -- derived names -------------------------------------------------------------
    def path(self, name):
        return os.path.join(self.state_dir, name)

    @property
    def client_key(self):
        return self.path(CLIENT_KEY_NAME)

    @property
    def host_key(self):
        return self.path(HOST_KEY_NAME)

    @property
    def authorized_keys(self):
        return self.path(AUTHORIZED_KEYS_NAME)

    @property
    def record(self):
        return self.path(RECORD_NAME)

    def server_pidfile(self, endpoint):
        return self.path("server-%s.pid" % endpoint.netns)

    def server_log(self, endpoint):
        return self.path("server-%s.log" % endpoint.netns)

    def sshd_config_path(self, host):
        return self.path("sshd-%s.conf" % host.name)

    def sshd_pidfile(self, host):
        return self.path("sshd-%s.pid" % host.name)

    def sshd_log(self, host):
        return self.path("sshd-%s.log" % host.name)

    @property
    def ssh_hosts(self):
        return [h for h in self.hosts if h.ssh]

    def netns_roles(self):
        """Every namespace the inputs call for: name -> (role text, derived?)."""
        roles = {self.fabric: ("fabric", True)}
        for host in self.hosts:
            roles[host.netns] = ("host %s" % host.name, True)
        for ep in self.endpoints:
            # A namespace the inventory names itself may pre-exist; only derived
            # names are the lab's by convention (see reconcile.py for adoption).
            derived = ep.netns == naming.endpoint_netns(
                {"name": ep.name, "namespace": ep.namespace}, self.prefix)
            roles[ep.netns] = ("endpoint %s" % ep.key, derived)
        return roles

    def server_listen(self, endpoint):
        """(served listen specs, warnings) for an endpoint given kernel support."""
        served, warnings = [], []
        for port, protocol in endpoint.ports:
            if protocol in self.protocols:
                served.append(listen_spec(port, protocol))
            else:
                warnings.append(
                    "endpoint %s: port %d/%s is not served: the running kernel does not support %s"
                    % (endpoint.key, port, protocol, protocol)
                )
        if not served:
            warnings.append("endpoint %s: no port can be served, so no server runs in %s" % (endpoint.key, endpoint.netns))
        return tuple(served), warnings


# --- rendered files and command lines -------------------------------------------------

def sshd_config(spec, host):
    """The sshd configuration of one ssh lab host (everything under state_dir)."""
    lines = [
        "# Generated by palisade.ebpf.lab for lab host %s (prefix %s). Do not edit:" % (host.name, spec.prefix),
        "# the lab rewrites it and restarts this sshd when it changes.",
        "ListenAddress %s:22" % host.ipv4,
        "HostKey %s" % spec.host_key,
        "PidFile %s" % spec.sshd_pidfile(host),
        "AuthorizedKeysFile %s" % spec.authorized_keys,
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "X11Forwarding no",
        "PrintMotd no",
        "AcceptEnv LANG LC_*",
        # internal-sftp needs no helper binary, so Ansible's sftp transfers work anywhere.
        "Subsystem sftp internal-sftp",
        "",
    ]
    return "\n".join(lines)


def server_argv(spec, endpoint, listen):
    """Command line of an endpoint's server; the executor checks it before killing."""
    argv = [
        SERVER_PYTHON, spec.server_script,
        "--endpoint", endpoint.key,
        "--rev", spec.server_rev,
        "--pidfile", spec.server_pidfile(endpoint),
        "--log", spec.server_log(endpoint),
    ]
    for item in listen:
        argv.extend(["--listen", item])
    return argv


def parse_server_argv(argv):
    """Inverse of ``server_argv`` for a running process's cmdline, or None.

    Returns {script, endpoint, rev, pidfile, listen: tuple} when ``argv`` is a
    lab server's command line.
    """
    if len(argv) < 2 or not os.path.basename(argv[0]).startswith("python"):
        return None
    result = {"script": argv[1], "listen": []}
    options = {"--endpoint": "endpoint", "--rev": "rev", "--pidfile": "pidfile", "--log": "log"}
    rest = argv[2:]
    if len(rest) % 2:
        return None
    for flag, value in zip(rest[0::2], rest[1::2]):
        if flag == "--listen":
            result["listen"].append(value)
        elif flag in options:
            result[options[flag]] = value
        else:
            return None
    if not all(k in result for k in ("endpoint", "rev", "pidfile")):
        return None
    result["listen"] = tuple(result["listen"])
    return result


# --- lab objects -------------------------------------------------------------------------

def _where(netns):
    return netns or "root"


def _netns_key(name):
    return ("netns", (name,))


def _structure(kind, ident, attrs):
    """(within, needs) of an object, from its own identity and attributes.

    ``within``: what the object lives in; deleting one of them takes the
    object along, so its own deletion is skipped.  ``needs``: what it is built
    on; re-creating one of them means the object must be redone too (a
    re-created veth has lost its address and routes).  ``within`` is always
    part of ``needs``.
    """
    within = []
    needs = []
    if kind in ("keypair", "authorized_keys"):
        within.append(("state_dir", (os.path.dirname(ident[0]),)))
    elif kind in ("bridge", "link", "veth", "address", "route", "sysctl"):
        if ident[0]:
            within.append(_netns_key(ident[0]))
        if kind == "address":
            within.append(("veth", (ident[0], ident[1])))
        elif kind == "route" and attrs.get("dev"):
            within.append(("veth", (ident[0], attrs["dev"])))
        elif kind == "veth" and "/" in (attrs.get("peer") or ""):
            fabric = attrs["peer"].split("/", 1)[0]
            needs.extend([_netns_key(fabric), ("bridge", (fabric, BRIDGE_IFNAME))])
    elif kind in PROCESS_KINDS and attrs.get("netns"):
        needs.append(_netns_key(attrs["netns"]))
    return within, within + needs


class LabObject(object):
    """One thing the lab manages.

    ``attrs`` is the compared state; ``meta`` carries facts that are not part
    of the state:

    - ``within`` / ``needs``: keys of the objects it lives in / is built on
      (see ``_structure``); ``needs`` may be extended by the caller.
    - ``keep``: observed but not the lab's to delete (a namespace that
      existed before the lab adopted it because the inventory named it).
    - ``foreign``: observed where the lab wants to put something, but owned
      by someone else; planning refuses with this message.
    - ``pid``: the process of a server/sshd.
    """

    __slots__ = ("kind", "ident", "attrs", "meta")

    def __init__(self, kind, ident, attrs=None, meta=None, needs=()):
        if kind not in KIND_ORDER:
            raise ValueError("unknown lab object kind %r" % (kind,))
        self.kind = kind
        self.ident = tuple(ident) if isinstance(ident, (list, tuple)) else (ident,)
        self.attrs = dict(attrs or {})
        self.meta = dict(meta or {})
        within, implied = _structure(self.kind, self.ident, self.attrs)
        self.meta["within"] = within
        self.meta["needs"] = implied + [k for k in needs if k not in implied]

    @property
    def key(self):
        return (self.kind, self.ident)

    def sort_key(self):
        return (KIND_ORDER.index(self.kind), tuple(str(part) for part in self.ident))

    def describe(self):
        a, i = self.attrs, self.ident
        if self.kind == "state_dir":
            return "state_dir %s" % i[0]
        if self.kind == "keypair":
            return "ssh key %s (%s)" % (i[0], a.get("role"))
        if self.kind == "authorized_keys":
            return "authorized_keys %s <- %s" % (i[0], a.get("source"))
        if self.kind == "netns":
            return "netns %s (%s)" % (i[0], a.get("role"))
        if self.kind in ("bridge", "link"):
            text = "%s %s/%s %s" % (self.kind, _where(i[0]), i[1], "up" if a.get("up") else "down")
            if a.get("kind"):
                text += " (a %s, not a bridge)" % a["kind"]
            return text
        if self.kind == "veth":
            text = "veth %s/%s <-> %s (master %s, %s" % (
                _where(i[0]), i[1], a.get("peer"), a.get("master") or "none", "up" if a.get("up") else "down")
            if "ipv6" in a:
                text += ", ipv6 %s" % ("on" if a["ipv6"] else "off")
            return text + ")"
        if self.kind == "address":
            return "address %s/%s %s" % (_where(i[0]), i[1], i[2])
        if self.kind == "route":
            text = "route %s: %s dev %s scope %s proto %s" % (
                _where(i[0]), i[1], a.get("dev"), a.get("scope"), a.get("proto"))
            if a.get("src"):
                text += " src %s" % a["src"]
            return text
        if self.kind == "sysctl":
            return "sysctl %s: %s = %s" % (_where(i[0]), i[1], a.get("value"))
        if self.kind == "server":
            return "server %s in %s: %s [script %s]" % (
                i[0], a.get("netns"), " ".join(a.get("listen") or ()) or "-", a.get("rev"))
        # sshd
        return "sshd %s in %s: %s [config %s]" % (i[0], a.get("netns"), a.get("listen"), a.get("config"))

    def __repr__(self):
        return "<LabObject %s>" % self.describe()

    def __eq__(self, other):
        return isinstance(other, LabObject) and self.key == other.key and self.attrs == other.attrs

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self.key)


def describe_all(objects):
    """One line per object, in creation order: the module's before/after
    (and, as text, its diff)."""
    return [o.describe() for o in sorted(objects, key=LabObject.sort_key)]


def desired_objects(spec):
    """(objects, warnings): everything the lab consists of for ``spec``."""
    objs, warnings = [], []

    def add(kind, ident, attrs=None, needs=()):
        obj = LabObject(kind, ident, attrs, needs=needs)
        objs.append(obj)
        return obj

    state_dir = add("state_dir", spec.state_dir)
    roles = spec.netns_roles()
    for name in sorted(roles):
        add("netns", name, {"role": roles[name][0]})

    add("bridge", (spec.fabric, BRIDGE_IFNAME), {"up": True})
    addresses = [h.ipv4 for h in spec.hosts]

    # Controller access: the only things the lab puts in the root namespace.
    # IPv6 is off on it: the underlay is IPv4 only, and an IPv6 link-local
    # address would add a route (and neighbour discovery) to the root namespace.
    add("veth", ("", spec.ctl), {
        "peer": "%s/%s" % (spec.fabric, CTL_FABRIC_IFNAME), "master": BRIDGE_IFNAME, "up": True, "ipv6": False,
    })
    add("address", ("", spec.ctl, "%s/32" % CONTROLLER_ADDRESS))
    for ip in addresses:
        add("route", ("", "%s/32" % ip), {
            "dev": spec.ctl, "scope": ROUTE_SCOPE, "proto": UNDERLAY_ROUTE_PROTO, "src": CONTROLLER_ADDRESS,
        })

    for host in spec.hosts:
        add("link", (host.netns, "lo"), {"up": True})
        add("veth", (host.netns, HOST_IFNAME), {
            "peer": "%s/%s" % (spec.fabric, host.port_ifname), "master": BRIDGE_IFNAME, "up": True,
        })
        add("address", (host.netns, HOST_IFNAME, "%s/32" % host.ipv4))
        # Every other node on-link (they share the fabric's L2), and the way
        # back to the controller for the ssh hosts' sessions.
        for dst in [CONTROLLER_ADDRESS] + [ip for ip in addresses if ip != host.ipv4]:
            add("route", (host.netns, "%s/32" % dst), {
                "dev": HOST_IFNAME, "scope": ROUTE_SCOPE, "proto": UNDERLAY_ROUTE_PROTO,
            })
        add("sysctl", (host.netns, FORWARDING_SYSCTL), {"value": "1"})

    for ep in spec.endpoints:
        add("link", (ep.netns, "lo"), {"up": True})
        listen, notes = spec.server_listen(ep)
        warnings.extend(notes)
        if listen:
            add("server", ep.key, {"netns": ep.netns, "listen": listen, "rev": spec.server_rev},
                needs=[state_dir.key])

    if spec.ssh_hosts:
        client = add("keypair", spec.client_key, {"role": "client"})
        hostkey = add("keypair", spec.host_key, {"role": "sshd host key"})
        add("authorized_keys", spec.authorized_keys,
            {"source": os.path.basename(spec.client_key) + ".pub"}, needs=[client.key])
        for host in spec.ssh_hosts:
            add("sshd", host.name, {
                "netns": host.netns,
                "listen": "%s:22" % host.ipv4,
                "config": short_hash(sshd_config(spec, host)),
            }, needs=[hostkey.key, ("address", (host.netns, HOST_IFNAME, "%s/32" % host.ipv4))])
    return objs, warnings


# --- planning --------------------------------------------------------------------------------

Action = namedtuple("Action", "op obj old")
# op: create | update | replace | restart | delete.  ``old`` is the observed
# object (None for create).


def _change_op(desired, observed):
    if desired.kind in PROCESS_KINDS:
        return "restart"
    if desired.kind == "veth" and desired.attrs.get("peer") != observed.attrs.get("peer"):
        # Wrongly paired (or not a veth at all): only re-creating fixes that.
        return "replace"
    if desired.kind == "bridge" and observed.attrs.get("kind"):
        return "replace"
    return "update"


def _closure(keys, objects, relation):
    """``keys`` plus everything reachable through ``relation`` (within/needs)."""
    result, todo = set(), list(keys)
    while todo:
        key = todo.pop()
        if key in result:
            continue
        result.add(key)
        obj = objects.get(key)
        if obj is not None:
            todo.extend(obj.meta.get(relation, ()))
    return result


def _partition(desired, observed):
    want = dict((o.key, o) for o in desired)
    # Foreign objects are only observed to refuse a collision; they are never
    # the lab's to change or delete.
    have = dict((o.key, o) for o in observed if not o.meta.get("foreign"))
    kept = set(k for k, o in have.items() if o.meta.get("keep") and k not in want)
    gone = set(k for k in have if k not in want and k not in kept)
    for key in list(gone):
        obj = have[key]
        if obj.kind in UNDELETABLE_KINDS and not _rides_along(obj, have, gone):
            gone.discard(key)
            kept.add(key)
    return want, have, kept, gone


def _rides_along(obj, have, keys):
    """True when obj lives (transitively) in one of ``keys``: it shares their fate."""
    if obj.kind in PROCESS_KINDS:
        return False  # a process is never taken along: it is always stopped by pid
    return bool((_closure(obj.meta.get("within", ()), have, "within")) & keys)


def plan_actions(desired, observed):
    """Ordered actions turning ``observed`` into ``desired``.

    Raises LabError when a desired object collides with something that is not
    the lab's.  Deletions come first (reverse creation order, skipping what a
    deleted or kept container takes along), then creations, updates and
    restarts in creation order.
    """
    if len(set(o.key for o in desired)) != len(desired):
        raise LabError("internal error: duplicate lab objects in the plan")
    foreign = dict((o.key, o) for o in observed if o.meta.get("foreign"))
    for obj in sorted(desired, key=LabObject.sort_key):
        if obj.key in foreign:
            raise LabError(foreign[obj.key].meta["foreign"])
    want, have, kept, gone = _partition(desired, observed)

    ups = {}
    for obj in desired:
        seen = have.get(obj.key)
        if seen is None:
            ups[obj.key] = Action("create", obj, None)
        elif seen.attrs != obj.attrs:
            ups[obj.key] = Action(_change_op(obj, seen), obj, seen)

    # What is built on something (re)created this run must be redone, even if
    # it looked fine before: a re-created veth comes without its address and
    # routes, a new host key needs sshd restarted.
    progress = True
    while progress:
        progress = False
        for obj in sorted(desired, key=LabObject.sort_key):
            if obj.key in ups:
                continue
            for need in obj.meta.get("needs", ()):
                act = ups.get(need)
                if act is not None and act.op in ("create", "replace"):
                    op = "restart" if obj.kind in PROCESS_KINDS else "create"
                    ups[obj.key] = Action(op, obj, have.get(obj.key))
                    progress = True
                    break

    deletes = []
    for key in gone:
        obj = have[key]
        if _rides_along(obj, have, gone | kept):
            continue
        deletes.append(Action("delete", obj, obj))

    deletes.sort(key=lambda a: a.obj.sort_key(), reverse=True)
    creates = sorted(ups.values(), key=lambda a: a.obj.sort_key())
    return deletes + creates


def after_objects(desired, observed):
    """What the lab looks like once the plan ran: desired, plus what is kept."""
    want, have, kept, gone = _partition(desired, observed)
    result = list(desired)
    for key in sorted(kept | gone, key=lambda k: have[k].sort_key()):
        obj = have[key]
        if key in kept or _rides_along(obj, have, kept):
            result.append(obj)
    return result


def describe_action(action):
    return "%s %s" % (action.op, action.obj.describe())


def change_line(action):
    """The action as one line of the module's ``changes``: ``+`` creates,
    ``-`` deletes, ``~`` updates, replaces or restarts (the op named)."""
    if action.op == "create":
        return "+ %s" % action.obj.describe()
    if action.op == "delete":
        return "- %s" % action.obj.describe()
    return "~ %s %s" % (action.op, action.obj.describe())
