# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The palisade.ebpf.defaults lookup: what the roles read their defaults from."""

import os
import re

import pytest
from ansible.errors import AnsibleLookupError
from ansible.plugins.loader import lookup_loader

from ansible_collections.palisade.ebpf.plugins.module_utils import _defaults
from tests.support.paths import REPO


@pytest.fixture
def lookup():
    return lookup_loader.get("palisade.ebpf.defaults")


def test_values_and_types_are_the_defaults(lookup, monkeypatch):
    monkeypatch.delenv("PALISADE_LAB_PREFIX", raising=False)
    names = sorted(_defaults.DEFAULTS)
    values = lookup.run(names)
    assert values == [_defaults.DEFAULTS[n] for n in names]
    assert lookup.run(["route_protocol", "l7_table", "l7_mark"]) == [201, 2004, 0x200]


def test_the_controllers_environment_names_the_lab(lookup, monkeypatch):
    monkeypatch.setenv("PALISADE_LAB_PREFIX", "ci42")
    assert lookup.run(["lab_prefix", "route_protocol"]) == ["ci42", 201]


def test_an_unknown_name_is_an_error_naming_the_known_ones(lookup):
    with pytest.raises(AnsibleLookupError, match=r"unknown setting 'route_proto' \(known: .*route_protocol"):
        lookup.run(["route_proto"])


def test_every_default_is_documented_once_in_docs_settings():
    with open(os.path.join(REPO, "docs", "settings.md")) as f:
        text = f.read()
    for name in _defaults.DEFAULTS:
        rows = re.findall(r"^\|\s*`%s`\s*\|" % re.escape(name), text, re.M)
        assert len(rows) == 1, "docs/settings.md must have exactly one table row for %s" % name
