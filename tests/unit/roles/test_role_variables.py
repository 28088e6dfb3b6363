# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every variable a role reads is in its meta/argument_specs.yml, and no
role or playbook restates a value the collection defines in _defaults.py."""

import glob
import os
import re

import pytest
import yaml

from ansible_collections.palisade.ebpf.plugins.module_utils import _defaults
from tests.support.paths import REPO

ROLES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, "roles", "*")))
# Variables are palisade_* (and a role's own l7proxy_* / lab_* names). A name
# right after a dot is an attribute or a filter (palisade.ebpf.l7proxy_state),
# one in quotes a string (a lookup's term), and hostvars[...].x is another
# host's variable, not this role's input.
NAME = re.compile(r"(?<![\w.'\"])((?:palisade|l7proxy|lab)_[a-z0-9_]+)")
HOSTVARS = re.compile(r"hostvars\[[^\]]*\](?:\.[a-z0-9_]+|\[[^\]]*\])")
JINJA = re.compile(r"{{.*?}}|{%.*?%}", re.S)
# Keys whose values are Jinja expressions without braces.
BARE_EXPRESSIONS = ("when", "failed_when", "changed_when", "that", "loop", "until")


def _load(path):
    with open(path) as f:
        return yaml.safe_load(f) or {}


def _strings(node, key=None):
    """(key, text) of every string in a YAML tree, with the mapping key it sits under."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v, key)
    elif isinstance(node, str):
        yield key, node


def _names_in_expression(text):
    return set(NAME.findall(HOSTVARS.sub("", text)))


def _names_in_text(text):
    found = set()
    for block in JINJA.findall(text):
        found |= _names_in_expression(block)
    return found


def _defined_in_tasks(node):
    """Names a role's tasks define for themselves: registered results, facts,
    task-level vars and loop variables."""
    found = set()
    if isinstance(node, dict):
        if isinstance(node.get("register"), str):
            found.add(node["register"])
        for key in ("ansible.builtin.set_fact", "set_fact", "vars"):
            if isinstance(node.get(key), dict):
                found |= set(node[key])
        loop_control = node.get("loop_control")
        if isinstance(loop_control, dict) and loop_control.get("loop_var"):
            found.add(loop_control["loop_var"])
        for value in node.values():
            found |= _defined_in_tasks(value)
    elif isinstance(node, list):
        for value in node:
            found |= _defined_in_tasks(value)
    return found


def role_files(role, sub, pattern="*"):
    return sorted(glob.glob(os.path.join(REPO, "roles", role, sub, pattern)))


# The inventory schema (docs/inventory.md): palisade.ebpf.fleet_state reads and
# validates it, once for the whole fleet; the argument spec does not list it,
# since Ansible would template and check it again on every host (seconds per
# hundred hosts, docs/fleet-scale.md).
# Declared in a role's defaults but derived from the role's own results, so
# not an input its argument spec could check before the role runs.
DERIVED = {"fleet": {"palisade_l7_enabled"}}
INVENTORY_SCHEMA = {"palisade_node", "palisade_endpoints", "palisade_namespaces", "palisade_policies",
                    "palisade_policy_files"}


def consumed_and_defined(role):
    consumed, defined = set(), set()
    for path in role_files(role, "tasks", "*.yml"):
        tasks = _load(path)
        defined |= _defined_in_tasks(tasks)
        for key, text in _strings(tasks):
            consumed |= _names_in_expression(text) if key in BARE_EXPRESSIONS else _names_in_text(text)
    for path in role_files(role, "templates"):
        with open(path) as f:
            consumed |= _names_in_text(f.read())
    defaults = role_defaults(role)
    for value in defaults.values():
        for _key, text in _strings(value):
            consumed |= _names_in_text(text)
    return consumed, defined, set(defaults)


def role_defaults(role):
    path = os.path.join(REPO, "roles", role, "defaults", "main.yml")
    return _load(path) if os.path.exists(path) else {}


def argument_spec(role):
    return _load(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml"))["argument_specs"]["main"].get(
        "options") or {}


def dependencies(role):
    meta = _load(os.path.join(REPO, "roles", role, "meta", "main.yml"))
    return [d["role"].split(".")[-1] if isinstance(d, dict) else d.split(".")[-1] for d in meta.get("dependencies") or []]


@pytest.mark.parametrize("role", ROLES)
def test_every_variable_a_role_reads_is_in_its_argument_specs(role):
    consumed, defined, defaults = consumed_and_defined(role)
    for dependency in dependencies(role):
        # Results a dependency registers (palisade_fleet) are not inputs.
        defined |= consumed_and_defined(dependency)[1]
    options = set(argument_spec(role))
    defaults -= DERIVED.get(role, set())
    missing = sorted((consumed | defaults) - defined - options - DERIVED.get(role, set()))
    assert not missing, "roles/%s reads %s but meta/argument_specs.yml does not list them" % (role, missing)
    stale = sorted(options - consumed - defaults)
    assert not stale, "roles/%s/meta/argument_specs.yml lists %s, which the role never reads" % (role, stale)


def test_the_fleet_role_leaves_the_inventory_schema_to_fleet_state():
    spec = _load(os.path.join(REPO, "roles", "fleet", "meta", "argument_specs.yml"))["argument_specs"]["main"]
    assert not set(spec["options"]) & INVENTORY_SCHEMA
    description = " ".join(spec["description"])
    assert all("C(%s)" % name in description for name in INVENTORY_SCHEMA)


@pytest.mark.parametrize("role", ROLES)
def test_documented_defaults_are_the_role_defaults(role):
    defaults = role_defaults(role)
    for name, spec in argument_spec(role).items():
        if "default" in spec:
            assert name in defaults, "roles/%s documents a default for %s but declares none" % (role, name)
            assert spec["default"] == defaults[name], "roles/%s: %s documented as %r, declared as %r" % (
                role, name, spec["default"], defaults[name])


def test_a_setting_is_declared_by_one_role_only():
    """Collection-wide settings live in palisade.ebpf.fleet, which the other
    roles depend on; the lab role (run on its own, on the controller) is
    the one other place the lab prefix is declared."""
    seen = {}
    for role in ROLES:
        for name in role_defaults(role):
            seen.setdefault(name, []).append(role)
    twice = {name: roles for name, roles in seen.items() if len(roles) > 1}
    assert twice == {"palisade_lab_prefix": ["fleet", "lab"]}, twice
    for role in ("fleet", "lab"):
        assert role_defaults(role)["palisade_lab_prefix"] == "{{ lookup('palisade.ebpf.defaults', 'lab_prefix') }}"


def _literals():
    """Texts that would restate a collection default."""
    values = []
    for name, value in _defaults.DEFAULTS.items():
        if name in ("l7_rule_priority",):  # 9: too short to search for
            continue
        values.append(str(value))
        if isinstance(value, int) and value > 255:
            values.append(hex(value))
    values.append("'%s'" % _defaults.LAB_PREFIX)
    return values


def test_roles_and_playbooks_never_restate_a_default():
    offenders = []
    paths = glob.glob(os.path.join(REPO, "roles", "**", "*.yml"), recursive=True) + \
        glob.glob(os.path.join(REPO, "roles", "**", "*.j2"), recursive=True) + \
        glob.glob(os.path.join(REPO, "playbooks", "*.yml"))
    pattern = re.compile(r"(?<![\w./-])(%s)(?![\w./-])" % "|".join(re.escape(v) for v in _literals()))
    for path in paths:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if line.lstrip().startswith("#"):
                    continue
                match = pattern.search(line)
                if match:
                    offenders.append("%s:%d: %s" % (os.path.relpath(path, REPO), number, match.group(1)))
    assert not offenders, "defaults restated instead of read from palisade.ebpf.defaults:\n" + "\n".join(offenders)
