# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side: gather policy documents for ``parse.parse_documents``.

- ``palisade_policies``: a list of documents; entry i gets the origin
  ``palisade_policies[i]``.
- ``palisade_policy_files``: globs (``**`` recurses; a relative glob is
  resolved against a base directory) of multi-document YAML files; document
  i of a file (counting from 0, empty documents included in the count but
  skipped) gets the origin ``<path>#<i>``, where ``<path>`` is the file as
  the glob named it (relative to the base directory for a relative glob).

YAML is read with a safe loader that also rejects duplicate mapping keys
(Kubernetes' strict decoding does; PyYAML alone would silently keep the last,
dropping e.g. a whole ``ingress`` section). Every problem -- a glob that
matches nothing, an unreadable file, bad YAML -- raises ir.PolicyError with a
one-line message naming the file and document.
"""

from __future__ import annotations

import glob
import os

import yaml
from yaml.constructor import ConstructorError

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy.parse_common import one_line, q, type_name

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictSafeLoader(_BaseLoader):  # pylint: disable=too-many-ancestors
    """yaml.SafeLoader that refuses duplicate keys in a mapping."""


def _construct_mapping(loader, node, deep=False):
    if isinstance(node, yaml.MappingNode):
        seen = {}
        for key_node, dummy in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # merged keys may be overridden: that is what << is for
            key = loader.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise ConstructorError("while constructing a mapping", node.start_mark,
                                       "found an unhashable key", key_node.start_mark) from None
            if key in seen:
                raise ConstructorError("while constructing a mapping", node.start_mark,
                                       "duplicate key %s (first at line %d)" % (q(key), seen[key].line + 1),
                                       key_node.start_mark)
            seen[key] = key_node.start_mark
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


StrictSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _error(origin, field, message):
    return ir.PolicyError(one_line(origin), field, one_line(message))


def _yaml_problem(exc):
    """A PyYAML error as one line: 'line L, column C: problem'."""
    mark = getattr(exc, "problem_mark", None)
    text = getattr(exc, "problem", None)
    if not text:
        lines = str(exc).splitlines()
        text = lines[0] if lines else type(exc).__name__
    context = getattr(exc, "context", None)
    if context and context not in text:
        text = "%s: %s" % (context, text)
    if mark is not None:
        text = "line %d, column %d: %s" % (mark.line + 1, mark.column + 1, text)
    return text


def documents_from_policies(policies, var_name="palisade_policies"):
    """``palisade_policies`` -> [(origin, document)]."""
    if policies is None:
        return []
    if not isinstance(policies, (list, tuple)):
        raise _error(var_name, "value", "must be a list of policy documents, got %s" % type_name(policies))
    return [("%s[%d]" % (var_name, i), document) for i, document in enumerate(policies)]


def documents_from_files(patterns, base_dir=None, var_name="palisade_policy_files"):
    """``palisade_policy_files`` -> [(origin, document)], files in glob order
    (each glob's matches sorted), a file matched twice read once."""
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, (list, tuple)):
        raise _error(var_name, "value", "must be a list of file globs, got %s" % type_name(patterns))
    base = os.path.abspath(base_dir or os.getcwd())
    out = []
    read = set()
    for i, pattern in enumerate(patterns):
        where = "%s[%d]" % (var_name, i)
        if not isinstance(pattern, str) or not pattern:
            raise _error(where, "glob", "must be a non-empty string (a file glob), got %s" % q(pattern))
        for path, display in _matches(where, pattern, base):
            real = os.path.realpath(path)
            if real in read:
                continue
            read.add(real)
            out.extend(load_file(path, display))
    return out


def _matches(where, pattern, base):
    expanded = os.path.expanduser(pattern)
    relative = not os.path.isabs(expanded)
    full = os.path.normpath(os.path.join(base, expanded)) if relative else expanded
    found = []
    for path in sorted(glob.glob(full, recursive=True)):
        if os.path.isdir(path):
            continue
        display = os.path.relpath(path, base) if relative else path
        found.append((path, display))
    if not found:
        hint = " (relative to %s)" % base if relative else ""
        raise _error(where, "glob", "%s matches no file%s" % (q(pattern, 200), hint))
    return found


def load_file(path, display=None):
    """The documents of one YAML file as [("<display>#<i>", document)]."""
    display = display or path
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise _error(display, "file", "cannot read: %s" % (exc.strerror or exc)) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(display, "file", "not UTF-8 text (byte %d)" % exc.start) from None
    return load_text(text, display)


def load_text(text, display):
    """The documents of YAML text as [("<display>#<i>", document)]."""
    out = []
    position = 0
    try:
        for document in yaml.load_all(text, Loader=StrictSafeLoader):  # nosec B506: a safe loader
            if document is not None:
                out.append(("%s#%d" % (display, position), document))
            position += 1
    except yaml.YAMLError as exc:
        raise _error("%s#%d" % (display, position), "document", "invalid YAML: %s" % _yaml_problem(exc)) from None
    except RecursionError:
        raise _error("%s#%d" % (display, position), "document", "invalid YAML: nested too deeply") from None
    return out


def load_policy_documents(policies=None, policy_files=None, base_dir=None):
    """All policy documents of a run: ``palisade_policies`` first, then the
    files of ``palisade_policy_files``; ready for ``parse.parse_documents``."""
    return documents_from_policies(policies) + documents_from_files(policy_files, base_dir)
