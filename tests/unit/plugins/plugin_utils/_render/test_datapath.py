# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath's C rendering (plugin_utils/_render/datapath.py), without a
compiler: its constants, struct checks and map declarations come from
module_utils/_datapath/abi.py and maps.py, and it depends on the host's
settings and bpffs directory only."""

from __future__ import absolute_import, division, print_function

import ctypes
import re

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils import _defaults
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import abi, maps, settings as dp_settings
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.settings import SettingsError
from ansible_collections.palisade.ebpf.plugins.plugin_utils._render import datapath as render

BPFFS_DIR = "/sys/fs/bpf/palisade/pal-node1"


@pytest.fixture(scope="module")
def source():
    return render.render({}, BPFFS_DIR)


def defines(text):
    return dict(re.findall(r"^#define (\w+)\s+(\S+)", text, re.M))


def test_every_field_of_every_struct_is_checked_at_compile_time(source):
    for name, cls in abi.C_STRUCTS:
        assert "sizeof(struct %s) == %d" % (name, ctypes.sizeof(cls)) in source
        for field in cls._fields_:
            assert "__builtin_offsetof(struct %s, %s) == %d" % (name, field[0], getattr(cls, field[0]).offset) in source


def test_constants_and_reasons_come_from_the_abi(source):
    found = defines(source)
    for name in ("DIR_INGRESS", "DIR_EGRESS", "EP_F_ENFORCE_INGRESS", "EP_F_L7_EGRESS", "POL_F_DENY", "POL_F_L7",
                 "POLICY_DIR_EGRESS_BIT", "CT_F_PROXY"):
        assert int(found[name], 0) == getattr(abi, name), name
    for code, name in abi.REASONS.items():
        assert int(found[name]) == code, name


def test_the_l7_mark_is_the_collections_default(source):
    found = defines(source)
    assert int(found["MARK_MAGIC_TO_PROXY"], 16) == _defaults.L7_MARK
    assert int(found["MARK_MAGIC_MASK"], 16) == _defaults.L7_MARK_MASK
    assert int(found["L7_PROXY_PORT"]) == _defaults.L7_PROXY_PORT


def test_maps_are_declared_at_their_pin_paths(source):
    settings = dp_settings.normalise({})
    for spec in maps.MAPS:
        path = "%s/maps/%s" % (BPFFS_DIR, spec.pin_name(settings))
        assert path in source, spec.name


def test_rendering_depends_on_settings_and_directory_only(source):
    assert render.render({}, BPFFS_DIR) == source
    assert render.render({"ct_timeout_other": 61}, BPFFS_DIR) != source
    assert render.render({}, BPFFS_DIR + "x") != source


def test_bad_settings_name_the_key():
    with pytest.raises(SettingsError, match="settings.policy_max"):
        render.render({"policy_max": 1}, BPFFS_DIR)
