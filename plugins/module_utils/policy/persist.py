# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller-side persistent cache of the policy computation.

A run after a small inventory change should cost in proportion to the
change, loading the cache included. So the state is stored in a compact
form that loads quickly, rather than as pickled engine objects:

- identity numbers, addresses and selections as packed arrays (bytes, one
  copy each on load), turned into Python sets only for the selections a run
  actually touches;
- selection keys and policy terms as plain tuples (equal, and hashing
  alike, to the ir namedtuples they were built from, but much cheaper to
  load);
- blocks (the L4 entries peers share) stored once, by index;
- compiled rules as a nested pickle, loaded only when rules changed or a new
  rule combination appears;
- each policy's materialized peer groups, so that an unchanged policy is
  never recomputed, and a changed one is patched peer by peer.

What the engine then does with the loaded state is ``state.update``. The
file is written atomically (temporary file, then rename), in a directory
only the user can read: a pickle must come from a trusted place, and this
one is the user's own cache. A missing, unreadable or outdated cache just
means a full computation.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pickle
import tempfile
from array import array

from ansible_collections.palisade.ebpf.plugins.module_utils.policy import distill
from ansible_collections.palisade.ebpf.plugins.module_utils.policy import identity as ident
from ansible_collections.palisade.ebpf.plugins.module_utils.policy import ir
from ansible_collections.palisade.ebpf.plugins.module_utils.policy import repository as repo
from ansible_collections.palisade.ebpf.plugins.module_utils.policy import selectorcache as sc
from ansible_collections.palisade.ebpf.plugins.module_utils.policy import state as state_mod

CACHE_FORMAT = 1
STATE_FILE = "policy-state.pickle"
# 32-bit unsigned items for identity numbers, addresses and ids.
_TYPECODE = distill.PEERS_TYPECODE


def default_path():
    """``$XDG_CACHE_HOME/palisade`` (default ``~/.cache/palisade``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "palisade")


def _pack(numbers):
    return array(_TYPECODE, numbers).tobytes()


def _unpack(data):
    packed = array(_TYPECODE)
    packed.frombytes(data)
    return packed


# --- export ------------------------------------------------------------------

class _Tables:
    """Values stored once and referred to by index: selection keys, blocks
    (tuples of L4 entries) and HTTP rules. Kept from run to run (indices
    never change), so that a policy's stored form stays valid until the
    policy itself changes; rebuilt when mostly garbage."""

    def __init__(self):
        self.key_index = {}
        self.keys = []
        self.block_index = {}   # id(block) -> index; ``blocks_alive`` keeps the ids valid
        self.blocks = []
        self.blocks_alive = []
        self.http_index = {}
        self.http = []
        self.base_size = 0

    @classmethod
    def restored(cls, keys, blocks, stored_blocks, http, stored_http):
        tables = cls()
        tables.keys = keys
        tables.key_index = {key: i for i, key in enumerate(keys)}
        tables.blocks = stored_blocks
        tables.blocks_alive = blocks
        tables.block_index = {id(block): i for i, block in enumerate(blocks)}
        tables.http = stored_http
        tables.http_index = {rules: i for i, rules in enumerate(http)}
        tables.base_size = len(keys) + len(blocks)
        return tables

    def worn_out(self):
        return len(self.keys) + len(self.blocks) > 2 * self.base_size + 1000

    def key(self, key):
        if key is sc.WILDCARD:
            return -1
        found = self.key_index.get(key)
        if found is None:
            found = self.key_index[key] = len(self.keys)
            self.keys.append(sc.plain(key))
        return found

    def block(self, block):
        found = self.block_index.get(id(block))
        if found is None:
            found = self.block_index[id(block)] = len(self.blocks)
            self.blocks_alive.append(block)
            self.blocks.append(tuple((p, lo, hi, deny, self._http(http), names)
                                     for p, lo, hi, deny, http, names in block))
        return found

    def _http(self, http):
        if http is None:
            return None
        found = self.http_index.get(http)
        if found is None:
            found = self.http_index[http] = len(self.http)
            self.http.append(sc.plain(http))
        return found


def _pack_ipcache(ipcache):
    """The shared IP table as one string of prefixes and one array of
    identities: two objects to store and load instead of 60,000 pairs."""
    return "\n".join(ipcache), _pack(ipcache.values())


def _unpack_ipcache(data):
    prefixes, numbers = data
    return dict(zip(prefixes.split("\n"), _unpack(numbers))) if prefixes else {}


def export_state(state):
    """Plain data for a State (see the module docstring)."""
    with state_mod.no_gc():
        return _export(state)


def _export(state):
    distiller, cache, repository = state.distiller, state.cache, state.repository
    tables = state.tables
    fresh = tables is None or tables.worn_out()
    if fresh:
        tables = state.tables = _Tables()
    selections = []
    for key in cache.keys():
        members = cache.packed.get(key)
        index = tables.key(key)
        selections.append((index, members.tobytes() if members is not None else _pack(sorted(cache.selections[key])),
                           cache.digests.get(key)))
    digest_index = None
    policies, position = [], {}
    token = (id(tables), id(repository))
    for policy in distiller.live_policies():
        position[id(policy)] = len(policies)
        stored = policy.stored
        if stored is None or stored[0] != token:
            if digest_index is None:
                digest_index = {d: i for i, d in enumerate(repository.digests)}
            stored = policy.stored = (token, _store_policy(policy, tables, digest_index))
        policies.append(stored[1] + (policy._ref,))
    subjects = {key: (position[id(s.ingress)], position[id(s.egress)], s._ref, s._from)
                for key, s in distiller.subjects.items()}
    rows, collisions = state.table.export()
    if fresh:
        tables.base_size = len(tables.keys) + len(tables.blocks)
    return {
        "format": CACHE_FORMAT,
        "state_format": state.format,
        "rules_fingerprint": state.rules_fingerprint,
        "namespaces_fingerprint": state.namespaces_fingerprint,
        "hosts": {host: (h.fingerprint, h.address, _pack(h.numbers), _pack(h.port_maps), _pack(h.addresses))
                  for host, h in state.hosts.items()},
        "groups": state.groups,
        "identity_counts": state.identity_counts,
        "port_maps": state.port_maps,
        "ipcache": _pack_ipcache(state.ipcache),
        "identities": rows,
        "collisions": collisions,
        "selections": selections,
        "partial": [(tables.key(k), tuple(v)) for k, v in cache.partial.items()],
        "mixes": cache.mixes,
        "addresses": (_pack(cache.addresses.addresses), _pack(cache.addresses.numbers),
                      {n: tuple(a) for n, a in cache.addresses.by_number.items()}),
        "repository": repository.export(),
        "named_ports": (state.named_ports.by_identity, state.named_ports.declared),
        "keys": tables.keys,
        "blocks": tables.blocks,
        "http": tables.http,
        "policies": policies,
        "subjects": subjects,
    }


def _store_policy(policy, tables, digest_index):
    """A DirectionPolicy's stored form (its reference aside)."""
    direction, digests, port_map = policy.signature
    terms = array("i")
    for key, block in policy.terms:
        terms.append(tables.key(key))
        terms.append(tables.block(block))
    groups = None
    if policy.materialized:
        groups = [(tables.block(block), members.tobytes()) for block, members in policy.groups.items()]
    return (direction, _pack(map(digest_index.__getitem__, digests)), port_map, policy.enforced_by,
            terms.tobytes(), [(tables.key(k), t) for k, t in policy.named_terms], groups)


# --- restore -------------------------------------------------------------------

def _http_rules(plain):
    return tuple(ir.HTTPRule(r[0], r[1], r[2], r[3], tuple(ir.HeaderMatch(*m) for m in r[4])) for r in plain)


def restore_state(data):
    """A State from ``export_state`` data; None when the format is unknown."""
    if data.get("format") != CACHE_FORMAT or data.get("state_format") != state_mod.STATE_FORMAT:
        return None
    with state_mod.no_gc():
        return _restore(data)


def _restore(data):
    state = state_mod.State()
    state.rules_fingerprint = data["rules_fingerprint"]
    state.namespaces_fingerprint = data["namespaces_fingerprint"]
    state.hosts = {host: state_mod.HostState(fp, address, _unpack(numbers), _unpack(port_maps), _unpack(addresses))
                   for host, (fp, address, numbers, port_maps, addresses) in data["hosts"].items()}
    state.groups = data["groups"]
    state.identity_counts = data["identity_counts"]
    state.port_maps = data["port_maps"]
    state.port_map_ids = {pm: i for i, pm in enumerate(state.port_maps)}
    state.ipcache = _unpack_ipcache(data["ipcache"])
    state.table = table = ident.IdentityTable.restore(data["identities"], data["collisions"])

    keys = data["keys"]
    addresses = sc.AddressBook()
    packed_addresses, packed_numbers, by_number = data["addresses"]
    addresses.addresses = _unpack(packed_addresses).tolist()
    addresses.numbers = _unpack(packed_numbers).tolist()
    addresses.by_number = {n: list(a) for n, a in by_number.items()}
    state.cache = cache = sc.SelectorCache(table, addresses, data["mixes"])
    for index, members, digest in data["selections"]:
        cache.packed[keys[index]] = _unpack(members)
        if digest is not None:
            cache.digests[keys[index]] = digest
    cache.partial = {keys[k]: frozenset(v) for k, v in data["partial"]}

    state.repository = repository = repo.Repository.restore(data["repository"])
    repository.cache = cache
    state.named_ports = named_ports = distill.NamedPorts()
    named_ports.by_identity, named_ports.declared = data["named_ports"]

    distiller = distill.Distiller(repository, cache, named_ports, state.port_maps)
    http = [_http_rules(h) for h in data["http"]]
    blocks = [distiller.intern_block(tuple(
        (p, lo, hi, deny, None if h is None else http[h], distiller.intern_names(names))
        for p, lo, hi, deny, h, names in block)) for block in data["blocks"]]
    all_keys = keys + [sc.WILDCARD]  # index -1
    digests = repository.digests
    policies = []
    tables = state.tables = _Tables.restored(keys, blocks, data["blocks"], http, data["http"])
    token = (id(tables), id(repository))
    for stored in data["policies"]:
        direction, rules, port_map, enforced_by, terms, named_terms, groups, ref = stored
        signature = (direction, tuple(map(digests.__getitem__, _unpack(rules))), port_map)
        flat = array("i")
        flat.frombytes(terms)
        policy = distill.DirectionPolicy(
            distiller, direction, signature, bool(enforced_by), enforced_by,
            tuple(zip(map(all_keys.__getitem__, flat[0::2]), map(blocks.__getitem__, flat[1::2]))),
            tuple((all_keys[k], t) for k, t in named_terms))
        policy._ref = ref
        policy.stored = (token, stored[:-1])
        if groups is not None:
            policy._groups = {blocks[b]: _unpack(members) for b, members in groups}
        policies.append(policy)
        distiller.policies[signature] = policy
    subjects = distiller.subjects
    for key, (ingress, egress, ref, parts) in data["subjects"].items():
        subject = subjects[key] = distill.SubjectPolicy(policies[ingress], policies[egress])
        subject._ref, subject._from = ref, parts
    state.distiller = distiller
    return state


# --- the cache ------------------------------------------------------------------

class PersistentCache:
    """The state of the last computation, in ``path`` (a directory; default
    ``default_path()``). ``compute`` loads it and updates it incrementally;
    ``save`` writes the result back."""

    def __init__(self, path=None, name=None):
        self.path = path or default_path()
        self.name = name          # distinguishes fleets sharing one directory
        self.state = None
        self.loaded = False       # a usable state was found on disk
        self.error = None         # why the state on disk was not used, if it was not

    @property
    def file(self):
        return os.path.join(self.path, "policy-state-%s.pickle" % self.name if self.name else STATE_FILE)

    def load(self):
        """The stored State, or None (missing, unreadable or outdated)."""
        try:
            with open(self.file, "rb") as f:
                data = pickle.load(f)
            state = restore_state(data) if isinstance(data, dict) else None
        except FileNotFoundError:
            return None
        except Exception as exc:  # pylint: disable=broad-except  # any damage just means a full computation
            self.error = "%s: %s" % (type(exc).__name__, exc)
            return None
        if state is None:
            self.error = "the cache was written by another version"
        return state

    def compute(self, fleet, rules):
        """The State for ``fleet`` and ``rules``, reusing the stored one."""
        previous = self.state if self.state is not None else self.load()
        self.loaded = previous is not None
        # An update changes the previous state in place: should it fail
        # half-way, nothing of it may be saved.
        self.state = None
        if previous is None:
            self.state = state_mod.compute_full(fleet, rules)
        else:
            self.state = state_mod.update(previous, fleet, rules)
        return self.state

    def save(self):
        """Write the state of the last ``compute`` (atomically); nothing to
        do when that run changed nothing."""
        if self.state is None or (self.loaded and self.state.last_run.get("mode") == "unchanged"):
            return False
        # Store every policy materialized, with its reference: the next run
        # then never recomputes one its changes do not touch.
        with state_mod.no_gc():
            for subject in self.state.distiller.subjects.values():
                subject.ingress.groups  # pylint: disable=pointless-statement
                subject.egress.groups  # pylint: disable=pointless-statement
                subject.ref  # pylint: disable=pointless-statement
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".policy-state.", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(export_state(self.state), f, protocol=4)
            os.replace(temporary, self.file)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        return True
