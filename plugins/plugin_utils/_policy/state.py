# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The computation's state, built from scratch or updated incrementally.

``compute_full(fleet, rules)`` runs the pipeline

    endpoints -> identity labels -> identities (+ CIDR identities)
    -> selector cache -> repository (rules by subject)
    -> distiller (one DirectionPolicy per distinct rule combination)

and returns a ``State``: everything the run computed. Work is per distinct
label set, selector and rule combination, never per endpoint beyond reading
the inventory; policies are materialized on first use.

``update(state, fleet, rules)`` brings a previous run's state up to date
with new inputs and recomputes only what changed: hosts whose endpoints
changed (detected by a fingerprint per host), the identities that appear or
disappear, the selections that gain or lose them, the subjects whose rules
changed, and single peers of the policies those selections feed
(``DirectionPolicy.patch``). persist.py keeps a State between runs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gc
import hashlib
import io
import pickle
import socket
import struct
from contextlib import contextmanager

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import distill
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import identity as ident
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import labels as labels_mod
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import repository as repo
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import selectorcache as sc

# Bump when the meaning or layout of State changes: older caches are ignored.
STATE_FORMAT = 1


@contextmanager
def no_gc(survivors_to_oldest=False):
    """The computation allocates millions of small objects and frees few;
    the cyclic collector would rescan the whole (large, acyclic) heap again
    and again. Reference counting still frees everything it does. With
    ``survivors_to_oldest``, what is alive at the end goes straight to the
    oldest generation (see controller_run)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if survivors_to_oldest:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def controller_run():
    """For one whole controller run (load, parse, compute, shares): the
    cyclic collector paused throughout, not just stage by stage. Every
    object the run keeps (inventory records, state, shares) is alive until
    its end, yet with the collector on, each young-generation collection
    traverses them again (measured: about half the time of a run after a
    small change). At the end the survivors go straight to the oldest
    generation (gc.freeze, then gc.unfreeze, which puts frozen objects back
    there without traversing them): they stay collectable, by the next
    full collection, and are not traversed again by young ones. (This
    unfreezes anything frozen before, which nothing in Ansible does.)"""
    return no_gc(survivors_to_oldest=True)


def _address(text):
    return struct.unpack("!I", socket.inet_aton(text))[0]


def _pickled(value):
    """Pickle without memo: equal content gives equal bytes, however the
    objects inside happen to be shared (plain pickle and marshal both
    encode sharing, which differs between equal inputs)."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=4)
    pickler.fast = True
    pickler.dump(value)
    return buffer.getvalue()


def fingerprint(value):
    """A digest of plain data, for change detection between runs."""
    return hashlib.sha1(_pickled(value)).digest()


def rules_fingerprint(rules):
    """One digest for the whole rule list (its order is canonical), origins aside."""
    return hashlib.sha1(_pickled([rule._replace(origin="") for rule in rules])).digest()


class HostState:
    """One host's endpoints as the engine sees them, in inventory order:
    identity numbers, named-port map ids (State.port_maps) and addresses."""

    __slots__ = ("fingerprint", "address", "numbers", "port_maps", "addresses")

    def __init__(self, fingerprint_, address, numbers, port_maps, addresses):
        self.fingerprint = fingerprint_
        self.address = address        # node address (int)
        self.numbers = numbers        # identity numbers
        self.port_maps = port_maps    # port map ids
        self.addresses = addresses    # endpoint addresses (ints)

    def items(self):
        return zip(self.numbers, self.port_maps, self.addresses)


class _LabelMemo:
    """Identity label sets and their strings, each distinct one built once."""

    def __init__(self, fleet):
        self.namespaces = {name: ns["labels"] for name, ns in fleet["namespaces"].items()}
        self.by_endpoint = {}  # (namespace, frozenset(labels.items())) -> label string
        self.label_sets = {}   # label string -> label set

    def text(self, endpoint):
        key = (endpoint["namespace"], frozenset(endpoint["labels"].items()))
        text = self.by_endpoint.get(key)
        if text is None:
            label_set = ident.endpoint_labels(endpoint["labels"], endpoint["namespace"],
                                              self.namespaces.get(endpoint["namespace"], {}))
            text = self.by_endpoint[key] = labels_mod.label_string(label_set)
            self.label_sets[text] = label_set
        return text


class State:
    """Everything one computation leaves behind for the next."""

    def __init__(self):
        self.format = STATE_FORMAT
        self.rules_fingerprint = None
        self.namespaces_fingerprint = None
        self.hosts = {}             # host -> HostState
        self.table = None           # IdentityTable
        self.cache = None           # SelectorCache
        self.repository = None      # Repository
        self.named_ports = None     # NamedPorts
        self.distiller = None       # Distiller
        self.groups = {}            # (identity, port map id) -> number of endpoints: the subjects
        self.identity_counts = {}   # endpoint identity -> number of endpoints
        self.port_maps = []         # port map id -> port map (frozenset); ids never change
        self.port_map_ids = {}      # port map -> id
        self.ipcache = {}           # the IP table all hosts share (see FleetPolicy.ipcache_shared)
        self.tables = None          # persist.py: tables shared by the stored policies
        self.last_run = {}          # what the last computation did (for stats and tests)

    def port_map_id(self, port_map):
        found = self.port_map_ids.get(port_map)
        if found is None:
            found = self.port_map_ids[port_map] = len(self.port_maps)
            self.port_maps.append(port_map)
        return found

    def host_state(self, node, memo, fingerprint_=None):
        """A host's state with identity label *strings* in ``numbers``; they
        become numbers once every new label set has one. ``fingerprint_``:
        the host's, when the caller has it already (see ``update``)."""
        endpoints = node["endpoints"]
        texts = [memo.text(ep) for ep in endpoints]
        maps = [self.port_map_id(distill.port_map_of(ep["ports"])) for ep in endpoints]
        return HostState(fingerprint_ or fingerprint(endpoints), _address(node["ipv4"]), texts, maps,
                         [_address(ep["ipv4"]) for ep in endpoints])


_NTOA = socket.inet_ntoa
_PACK = struct.Struct("!I").pack


def _host_key(address):
    return _NTOA(_PACK(address)) + "/32"


def _ipcache_add_host(ipcache, host_state):
    ipcache[_host_key(host_state.address)] = ident.REMOTE_NODE
    for number, dummy, address in host_state.items():
        ipcache[_host_key(address)] = number


def _ipcache_remove_address(state, address):
    """Forget a node or endpoint /32; a policy CIDR of the same /32 (which
    the address had hidden) shows again."""
    cidr = state.table.by_prefix.get((address, 32))
    if cidr is None:
        state.ipcache.pop(_host_key(address), None)
    else:
        state.ipcache[_host_key(address)] = cidr


def _ipcache_remove_host(state, host_state):
    _ipcache_remove_address(state, host_state.address)
    for address in host_state.addresses:
        _ipcache_remove_address(state, address)


def build_ipcache(state):
    """The shared IP table from scratch: policy CIDRs and world first, then
    node and endpoint /32s, which win over a policy CIDR of the same /32."""
    table = {ident.format_prefix(prefix): number for prefix, number in state.table.by_prefix.items()}
    for host_state in state.hosts.values():
        _ipcache_add_host(table, host_state)
    return table


# --- the full computation ----------------------------------------------------------

def compute_full(fleet, rules, compiled=None, fingerprints=None):
    """Everything from scratch (``compiled``: rule digest -> CompiledRule
    from an earlier run, to skip recompiling; ``fingerprints``: see
    ``update``)."""
    fingerprints = fingerprints or {}
    with no_gc():
        state = State()
        state.rules_fingerprint = rules_fingerprint(rules)
        state.namespaces_fingerprint = fingerprint(fleet["namespaces"])
        repository = repo.Repository(rules, compiled)
        memo = _LabelMemo(fleet)
        hosts = {host: state.host_state(node, memo, fingerprints.get(host)) for host, node in fleet["nodes"].items()}
        table = ident.IdentityTable.build(memo.label_sets.values(), _prefixes(repository))
        for host_state in hosts.values():
            host_state.numbers = list(map(table.by_text.__getitem__, host_state.numbers))

        addresses = sc.AddressBook((a, n) for s in hosts.values() for n, dummy, a in s.items())
        cache = sc.SelectorCache(table, addresses)
        repository.attach(cache)
        for host_state in hosts.values():
            _count_host(state.groups, state.identity_counts, host_state, +1)
        named_ports = distill.NamedPorts()
        for (number, port_map), count in state.groups.items():
            named_ports.add(number, state.port_maps[port_map], count)

        distiller = distill.Distiller(repository, cache, named_ports, state.port_maps)
        rules_of = repository.rules_by_identity()
        for number, port_map in state.groups:
            distiller.subject_policy(number, port_map, rules_of.get(number, ()))
        state.hosts, state.table, state.cache = hosts, table, cache
        state.repository, state.named_ports, state.distiller = repository, named_ports, distiller
        state.ipcache = build_ipcache(state)
        state.last_run = {"mode": "full", "changed_hosts": sorted(hosts), "subjects_recomputed": len(state.groups),
                          "policies_patched": 0, "new_identities": [], "removed_identities": []}
        return state


def _prefixes(repository):
    """CIDR prefixes the rules mention (they get CIDR identities; 0.0.0.0/0
    is world itself)."""
    prefixes = {ident.parse_prefix(p) for c in repository.rules for d in repo.DIRECTIONS
                for t in getattr(c, d).terms for p in sc.key_prefixes(t.key)}
    prefixes.discard((0, 0))
    return prefixes


def _count_host(groups, identities, host_state, sign):
    for number, port_map, dummy in host_state.items():
        key = (number, port_map)
        groups[key] = groups.get(key, 0) + sign
        identities[number] = identities.get(number, 0) + sign


def _drop_empty(counts):
    for key in [k for k, count in counts.items() if count <= 0]:
        del counts[key]


# --- the incremental computation ---------------------------------------------------

def update(state, fleet, rules, fingerprints=None):
    """Bring ``state`` (from an earlier run) up to date with ``fleet`` and
    ``rules``, recomputing only what changed. Returns the updated state
    (the same object), or a new one when a full computation was needed (a
    namespace's labels changed, or an identity hash collision moved).

    ``fingerprints``: host -> a digest that changes whenever the host's
    endpoint records do (the model cache's digest of its raw variables),
    for some or all hosts; the others are fingerprinted here, which costs
    a pickle of every endpoint record. Either kind is stored, and a host
    whose kind changed between runs just counts as changed."""
    fingerprints = fingerprints or {}
    if getattr(state, "format", None) != STATE_FORMAT:
        return compute_full(fleet, rules, fingerprints=fingerprints)
    if fingerprint(fleet["namespaces"]) != state.namespaces_fingerprint:
        # Namespace labels are part of every endpoint identity in them.
        return compute_full(fleet, rules, state.repository.compiled, fingerprints)
    with no_gc():
        return _update(state, fleet, rules, fingerprints)


def _update(state, fleet, rules, fingerprints):
    """``update`` once the previous state is known to be usable; its phases
    run in this order, each on what the ones before it left."""
    run = {"mode": "incremental", "changed_hosts": [], "subjects_recomputed": 0, "policies_patched": 0,
           "new_identities": [], "removed_identities": []}
    rules_fp = rules_fingerprint(rules)
    rules_changed = rules_fp != state.rules_fingerprint
    old_repository = state.repository
    repository = repo.Repository(rules, old_repository.compiled) if rules_changed else old_repository

    memo = _LabelMemo(fleet)
    hosts = _host_changes(state, fleet, memo, fingerprints)
    run["changed_hosts"] = sorted(hosts.changed + hosts.removed)
    _ipcache_forget(state, hosts)
    if not run["changed_hosts"] and not rules_changed:
        state.hosts = hosts.now
        run["mode"] = "unchanged" if not hosts.moved else "incremental"
        state.last_run = run
        return state

    applied = _update_identities(state, hosts, memo, repository if rules_changed else None)
    if applied is None:
        return compute_full(fleet, rules, old_repository.compiled, fingerprints)
    new_identities, gone_identities = applied
    groups_delta = _count_hosts_in(state, hosts, rules_changed)
    readdressed = _update_addresses(state, hosts)
    named_changed = _update_named_ports(state, groups_delta)

    # Selections: check only the identities that came, went or moved.
    changes = state.cache.update(new_identities, gone_identities, readdressed)
    state.distiller.repository = repository
    if rules_changed:
        _swap_rules(state, old_repository, repository)
    state.repository = repository

    run["subjects_recomputed"] = _recompute_subjects(state, rules_changed, new_identities, changes, groups_delta)
    run["policies_patched"] = _patch_policies(state, changes, named_changed, rules_changed)
    run["new_identities"] = sorted(i.number for i in new_identities)
    run["removed_identities"] = sorted(i.number for i in gone_identities)
    run["changed_selections"] = len(changes)
    state.rules_fingerprint = rules_fp
    state.last_run = run
    return state


class _HostChanges:
    """The hosts of this run against the previous run's: ``now`` (host ->
    HostState, unchanged ones kept), ``changed`` (new or with other
    endpoints; their HostStates still hold label strings), ``removed``, and
    ``moved`` ([(kept HostState, new node address)])."""

    __slots__ = ("before", "now", "changed", "removed", "moved")

    def __init__(self, before):
        self.before = before
        self.now, self.changed, self.removed, self.moved = {}, [], [], []

    def replaced(self):
        """The previous HostStates of changed and removed hosts."""
        before = self.before
        return [before[host] for host in self.changed + self.removed if host in before]

    def fresh(self):
        """The new HostStates of changed hosts."""
        return [self.now[host] for host in self.changed]


def _host_changes(state, fleet, memo, fingerprints):
    """A fingerprint of each host's endpoint list finds the changed ones."""
    hosts = _HostChanges(state.hosts)
    for host, node in fleet["nodes"].items():
        old = hosts.before.get(host)
        host_fp = fingerprints.get(host) or fingerprint(node["endpoints"])
        if old is not None and old.fingerprint == host_fp:
            address = _address(node["ipv4"])
            if address != old.address:
                hosts.moved.append((old, address))
            hosts.now[host] = old
        else:
            hosts.now[host] = state.host_state(node, memo, host_fp)
            hosts.changed.append(host)
    hosts.removed = [h for h in hosts.before if h not in hosts.now]
    return hosts


def _ipcache_forget(state, hosts):
    """The IP table without what goes away, and with moved node addresses:
    every address that goes is removed before any is added, since one can
    move from one host to another in a run."""
    for old in hosts.replaced():
        _ipcache_remove_host(state, old)
    for old, address in hosts.moved:
        _ipcache_remove_address(state, old.address)
    for old, address in hosts.moved:
        old.address = address
        state.ipcache[_host_key(address)] = ident.REMOTE_NODE


def _update_identities(state, hosts, memo, new_repository):
    """Label sets and CIDR prefixes (those of ``new_repository`` when the
    rules changed, else None) that appear or disappear, applied to the
    identity table: (new identities, gone identities), or None when only a
    full computation can apply them. An endpoint identity goes when its last
    endpoint does."""
    table = state.table
    endpoints_change = {}
    for old in hosts.replaced():
        for number in old.numbers:
            endpoints_change[number] = endpoints_change.get(number, 0) - 1
    added = {}
    for host_state in hosts.fresh():
        for text in host_state.numbers:
            number = table.by_text.get(text)
            if number is None:
                added[text] = (ident.KIND_ENDPOINT, memo.label_sets[text], None)
            else:
                endpoints_change[number] = endpoints_change.get(number, 0) + 1
    removed_texts = [table.text(n) for n, change in endpoints_change.items()
                     if change < 0 and state.identity_counts.get(n, 0) + change <= 0]
    if new_repository is not None:
        old_prefixes = set(p for p in table.by_prefix if p[1] > 0)
        new_prefixes = _prefixes(new_repository)
        for prefix in new_prefixes - old_prefixes:
            label_set = ident.cidr_labels(prefix)
            added[labels_mod.label_string(label_set)] = (ident.KIND_CIDR, label_set, prefix)
        removed_texts.extend(table.text(table.by_prefix[p]) for p in old_prefixes - new_prefixes)
    return table.update(added, removed_texts)


def _count_hosts_in(state, hosts, rules_changed):
    """The changed hosts' label strings become numbers; they are counted in
    (and the replaced ones out) and their addresses enter the IP table.
    Returns the change of each subject group's count ({(identity, port map
    id): change})."""
    identities_delta, groups_delta = {}, {}
    for old in hosts.replaced():
        _count_host(groups_delta, identities_delta, old, -1)
    by_text = state.table.by_text
    for host_state in hosts.fresh():
        host_state.numbers = list(map(by_text.__getitem__, host_state.numbers))
        _count_host(groups_delta, identities_delta, host_state, +1)
        _ipcache_add_host(state.ipcache, host_state)
    state.hosts = hosts.now
    if rules_changed:
        state.ipcache = build_ipcache(state)  # policy CIDRs came or went
    for key, change in identities_delta.items():
        state.identity_counts[key] = state.identity_counts.get(key, 0) + change
    _drop_empty(state.identity_counts)
    for key, change in groups_delta.items():
        state.groups[key] = state.groups.get(key, 0) + change
    _drop_empty(state.groups)
    return groups_delta


def _update_addresses(state, hosts):
    """Endpoint addresses by identity, for ipBlocks: the identities whose
    addresses changed."""
    addresses = {}
    for old in hosts.replaced():
        for number, dummy, address in old.items():
            addresses[(address, number)] = addresses.get((address, number), 0) - 1
    for host_state in hosts.fresh():
        for number, dummy, address in host_state.items():
            addresses[(address, number)] = addresses.get((address, number), 0) + 1
    readdressed = set()
    for (address, number), change in sorted(addresses.items()):
        if change:
            readdressed.add(number)
            if change > 0:
                state.cache.addresses.add(address, number)
            else:
                state.cache.addresses.remove(address, number)
    return readdressed


def _update_named_ports(state, groups_delta):
    """Named ports by identity, for egress named ports: the identities whose
    set of port names changed."""
    named_changed = set()
    for (number, port_map), change in groups_delta.items():
        port_map = state.port_maps[port_map]
        if not port_map or not change:
            continue
        before = state.named_ports.union(number)
        if change > 0:
            state.named_ports.add(number, port_map, change)
        else:
            state.named_ports.remove(number, port_map, -change)
        if state.named_ports.union(number) != before:
            named_changed.add(number)
    return named_changed


def _recompute_subjects(state, rules_changed, new_identities, changes, groups_delta):
    """Subject policies recomputed where the rules may have changed, and for
    subject groups that are new; those of groups that are gone forgotten.
    Returns how many were recomputed."""
    repository, distiller = state.repository, state.distiller
    if rules_changed:
        affected = set(state.identity_counts)
        rules_of = repository.rules_by_identity()
    else:
        subject_keys = set(repository.subject_keys)
        affected = {i.number for i in new_identities}
        for key, (gained, lost) in changes.items():
            if key in subject_keys:
                affected.update(gained)
                affected.update(lost)
        affected.update(number for (number, dummy), change in groups_delta.items() if change > 0)
        rules_of = {}
    for key in [k for k in distiller.subjects if k not in state.groups]:
        del distiller.subjects[key]
    recomputed = 0
    for number, port_map in state.groups:
        if number in affected:
            positions = rules_of.get(number)
            if positions is None:
                positions = rules_of[number] = repository.positions_for(number)
            distiller.subject_policy(number, port_map, positions)
            recomputed += 1
    return recomputed


def _patch_policies(state, changes, named_changed, rules_changed):
    """Policies fed by changed selections get the peers that changed
    patched; policies no subject uses any more, and (after a rule change)
    selections nothing needs, are forgotten. Returns how many were patched."""
    distiller = state.distiller
    live = distiller.live_policies()
    patched = 0
    for policy in live:
        peers = set()
        for key in policy.keys():
            found = changes.get(key)
            if found:
                peers.update(found[0])
                peers.update(found[1])
        if policy.named_terms and named_changed:
            peers.update(named_changed)
        if peers:
            policy.patch(peers)
            patched += 1
    distiller.policies = {p.signature: p for p in live}
    if rules_changed:
        state.cache.prune({k for p in live for k in p.keys()})
    return patched


def _swap_rules(state, old, new):
    """Rules changed: unregister the removed ones, register them all anew
    (unchanged rules find their selections in the cache)."""
    for digest, c in old.compiled.items():
        if digest not in new.compiled:
            old.unregister(c)
    new.attach(state.cache)
