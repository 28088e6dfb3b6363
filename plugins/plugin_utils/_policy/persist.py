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
  never recomputed, and a changed one is patched peer by peer; each
  policy's stored form is pickled on its own and kept with the policy, so
  that saving after a small change pickles only the policies it touched.

What the engine then does with the loaded state is ``state.update``. The
file is written atomically (temporary file, then rename), in a directory
only the user can read: a pickle must come from a trusted place, and this
one is the user's own cache. A missing, unreadable or outdated cache just
means a full computation.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import pickle
import re
import tempfile
from array import array

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _model as model
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import distill
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import identity as ident
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import parse
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import repository as repo
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import selectorcache as sc
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import state as state_mod

CACHE_FORMAT = 2
# Validated records and parsed rules are only as good as the code that made
# them: their files are keyed by a digest of that code's source as well.
MODEL_FORMAT = 1
RULES_FORMAT = 1
STATE_FILE = "policy-state.pickle"
MODEL_FILE = "fleet-model.pickle"
RULES_FILE = "policy-rules.pickle"
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
            stored = policy.stored = (token, pickle.dumps(_store_policy(policy, tables, digest_index), protocol=4))
        policies.append((stored[1], policy._ref))
    subjects = {key: (position[id(s.ingress)], position[id(s.egress)], s._ref, s._from)
                for key, s in distiller.subjects.items()}
    rows, collisions = state.table.export()
    if fresh:
        tables.base_size = len(tables.keys) + len(tables.blocks)
    return {
        "format": CACHE_FORMAT,
        "code": _code_digest(),
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
    if data.get("format") != CACHE_FORMAT or data.get("state_format") != state_mod.STATE_FORMAT \
            or data.get("code") != _code_digest():
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
    for stored, ref in data["policies"]:
        direction, rules, port_map, enforced_by, terms, named_terms, groups = pickle.loads(stored)
        signature = (direction, tuple(map(digests.__getitem__, _unpack(rules))), port_map)
        flat = array("i")
        flat.frombytes(terms)
        policy = distill.DirectionPolicy(
            distiller, direction, signature, bool(enforced_by), enforced_by,
            tuple(zip(map(all_keys.__getitem__, flat[0::2]), map(blocks.__getitem__, flat[1::2]))),
            tuple((all_keys[k], t) for k, t in named_terms))
        policy._ref = ref
        policy.stored = (token, stored)
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
    ``save`` writes the result back. Beside it, in a file of its own (written
    only when it changed), the validated inventory for ``model.load_fleet``:
    ``model_cache()``."""

    def __init__(self, path=None, name=None):
        self.path = path or default_path()
        self.name = name          # distinguishes fleets sharing one directory
        self.state = None
        self.loaded = False       # a usable state was found on disk
        self.error = None         # why the state on disk was not used, if it was not
        self.model = None         # model.ModelCache, once model_cache() is called
        self._model_blobs = {}    # host -> (digest, pickled record), as stored
        self.rules = None         # parse.ParseMemo, once parse_memo() is called

    @property
    def file(self):
        return os.path.join(self.path, "policy-state-%s.pickle" % self.name if self.name else STATE_FILE)

    @property
    def model_file(self):
        return os.path.join(self.path, "fleet-model-%s.pickle" % self.name if self.name else MODEL_FILE)

    def load(self):
        """The stored State, or None (missing, unreadable or outdated)."""
        try:
            data = _read(self.file)
            state = restore_state(data) if isinstance(data, dict) else None
        except FileNotFoundError:
            return None
        except Exception as exc:  # pylint: disable=broad-except  # any damage just means a full computation
            self.error = "%s: %s" % (type(exc).__name__, exc)
            return None
        if state is None:
            self.error = "the cache was written by another version"
        return state

    def model_cache(self):
        """The stored model.ModelCache for ``load_fleet``; an empty one when
        missing, unreadable or outdated (every host is then validated)."""
        if self.model is None:
            hosts = None
            try:
                data = _read(self.model_file)
                if _current(data, MODEL_FORMAT):
                    with state_mod.no_gc():
                        hosts = {host: (digest, pickle.loads(blob)) for host, (digest, blob) in data["hosts"].items()}
                    self._model_blobs = data["hosts"]
            except Exception:  # pylint: disable=broad-except  # any damage just means validating everything
                hosts = None
            self.model = model.ModelCache(hosts)
        return self.model

    @property
    def rules_file(self):
        return os.path.join(self.path, "policy-rules-%s.pickle" % self.name if self.name else RULES_FILE)

    def parse_memo(self):
        """The stored parse.ParseMemo for ``parse_documents``; an empty one
        when missing, unreadable or outdated (every document is then parsed)."""
        if self.rules is None:
            parsed = None
            try:
                data = _read(self.rules_file)
                if _current(data, RULES_FORMAT):
                    parsed = data["parsed"]
            except Exception:  # pylint: disable=broad-except  # any damage just means parsing everything
                parsed = None
            self.rules = parse.ParseMemo(parsed)
        return self.rules

    def _model_data(self):
        """The model cache in stored form: each host's record pickled on its
        own, so that a change re-pickles only the changed hosts."""
        blobs = {}
        for host, (digest, node) in self.model.hosts.items():
            known = self._model_blobs.get(host)
            blobs[host] = known if known is not None and known[0] == digest else \
                (digest, pickle.dumps(node, protocol=4))
        self._model_blobs = blobs
        return {"format": MODEL_FORMAT, "code": _code_digest(), "hosts": blobs}

    def compute(self, fleet, rules):
        """The State for ``fleet`` and ``rules``, reusing the stored one."""
        previous = self.state if self.state is not None else self.load()
        self.loaded = previous is not None
        # An update changes the previous state in place: should it fail
        # half-way, nothing of it may be saved.
        self.state = None
        fingerprints = self._fingerprints(fleet)
        if previous is None:
            self.state = state_mod.compute_full(fleet, rules, fingerprints=fingerprints)
        else:
            self.state = state_mod.update(previous, fleet, rules, fingerprints)
        return self.state

    def _fingerprints(self, fleet):
        """The model cache's raw-variable digests of the hosts whose records
        ``fleet`` holds (the very objects, so the digest is theirs): they
        spare state.update fingerprinting every endpoint record."""
        if self.model is None:
            return {}
        nodes = fleet["nodes"]
        return {host: digest for host, (digest, node) in self.model.hosts.items() if nodes.get(host) is node}

    def save(self):
        """Write the model cache and the state of the last ``compute``
        (atomically), each only when it changed. True when the state was
        written."""
        if self.model is not None and self.model.changed:
            self._write(self.model_file, self._model_data())
            self.model.changed = False
        if self.rules is not None and self.rules.changed:
            self._write(self.rules_file, {"format": RULES_FORMAT, "code": _code_digest(),
                                          "parsed": self.rules.parsed})
            self.rules.changed = False
        if self.state is None or (self.loaded and self.state.last_run.get("mode") == "unchanged"):
            return False
        # Store every policy materialized, with its reference: the next run
        # then never recomputes one its changes do not touch.
        with state_mod.no_gc():
            for subject in self.state.distiller.subjects.values():
                subject.ingress.groups  # pylint: disable=pointless-statement
                subject.egress.groups  # pylint: disable=pointless-statement
                subject.ref  # pylint: disable=pointless-statement
            self._write(self.file, export_state(self.state))
        return True

    def _write(self, file, data):
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".policy-state.", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(data, f, protocol=4)
            os.replace(temporary, file)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise


_CODE_DIGEST = []
_COLLECTION = "ansible_collections.palisade.ebpf."
_COMMENT = re.compile(r"#[^\n]*")


def _module_file(root, name):
    """The file of collection module ``name`` (dotted), or None."""
    path = os.path.join(root, *name[len(_COLLECTION):].split("."))
    for candidate in (path + ".py", os.path.join(path, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _imported_modules(text):
    """Dotted names of the collection modules a source file imports: the
    modules named in ``from ... import`` (or their package; parenthesised
    over lines too) and ``import``. Names that turn out to be attributes are
    the caller's to drop."""
    found = []
    start = 0
    while True:
        at = text.find(_COLLECTION, start)
        if at < 0:
            return found
        head = text[text.rfind("\n", 0, at) + 1:at].strip()
        end = text.find("\n", at)
        start = end = len(text) if end < 0 else end
        if head == "import":
            found.append(text[at:end].split()[0])
        elif head == "from":
            package, dummy, names = text[at:end].partition(" import ")
            found.append(package.strip())
            if names.lstrip().startswith("("):
                opened = text.find("(", at)
                start = text.find(")", opened)
                names = text[opened + 1:start]
            for name in _COMMENT.sub("", names).split(","):
                if name.split():
                    found.append(package.strip() + "." + name.split()[0])


def _collection_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _code_files():
    """Every file the cached objects' code comes from: the policy package
    and the model, and whatever collection code they import, transitively."""
    package = os.path.dirname(os.path.abspath(__file__))
    root = _collection_root()
    resolved = {}

    def module_file(name):
        if name not in resolved:
            parent = resolved.get(name.rpartition(".")[0])
            # A name imported from a module (not a package) is an attribute.
            is_attribute = parent is not None and not parent.endswith("__init__.py")
            resolved[name] = None if is_attribute else _module_file(root, name)
        return resolved[name]

    pending = sorted(os.path.join(package, name) for name in os.listdir(package) if name.endswith(".py"))
    pending.append(os.path.abspath(model.__file__))
    files = {}
    while pending:
        path = pending.pop()
        if path in files:
            continue
        with open(path, "rb") as f:
            files[path] = f.read()
        for name in _imported_modules(files[path].decode("utf-8")):
            found = module_file(name)
            if found is not None and found not in files:
                pending.append(found)
    return files


def _code_digest():
    """A digest of the code the cached objects come from (``_code_files``).
    A cache written by any other version of that code is not used (its
    pickled objects may not even import)."""
    if not _CODE_DIGEST:
        digest = hashlib.sha1()
        root = _collection_root()
        for path, data in sorted(_code_files().items()):
            digest.update(os.path.relpath(path, root).encode("utf-8") + b"\0" + data)
        _CODE_DIGEST.append(digest.hexdigest())
    return _CODE_DIGEST[0]


def code_digest():
    """The digest of the code the policy computation comes from (see _code_digest)."""
    return _code_digest()


def _current(data, format_):
    return isinstance(data, dict) and data.get("format") == format_ and data.get("code") == _code_digest()


def _read(file):
    """Unpickle ``file`` without the cyclic collector: the data is
    hundreds of thousands of small containers and holds no cycles."""
    with open(file, "rb") as f, state_mod.no_gc():
        return pickle.load(f)
