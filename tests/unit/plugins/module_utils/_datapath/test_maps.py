# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath's map specs (module_utils/_datapath/maps.py): pin names are
stable across releases unless a layout really changes, and change when it does."""

from __future__ import absolute_import, division, print_function

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import abi, maps, settings as dp_settings

DEFAULTS = dp_settings.normalise({})


def test_pin_names_of_the_default_settings_are_stable():
    # A new pin name makes every host build its maps afresh on the next run
    # (conntrack included): this list only changes with a real layout change.
    assert [spec.pin_name(DEFAULTS) for spec in maps.MAPS] == [
        "endpoints-7724f1f7", "ipcache_host-230aa899", "ipcache_prefix-f9f5e3aa", "policy-43117f0a", "ct-3ff7fd58",
        "frag-04986c97", "metrics-9c3eba82", "events-b8d6021d", "l7_flows-80b071f0", "proxy_sockets-8556750c",
    ]


def test_a_size_change_gives_a_new_pin_for_that_map_only():
    smaller = dp_settings.normalise({"policy_max": 1024})
    changed = [spec.name for spec in maps.MAPS if spec.pin_name(smaller) != spec.pin_name(DEFAULTS)]
    assert changed == ["policy"]
    assert maps.MAPS_BY_NAME["policy"].max_entries(smaller) == 1024


def test_fixed_sizes_ignore_settings():
    assert maps.MAPS_BY_NAME["metrics"].max_entries({}) == abi.METRICS_ENTRIES
    assert maps.MAPS_BY_NAME["proxy_sockets"].max_entries({}) == 1
    # the l7proxy module finds the socket map without knowing the host's settings
    assert maps.MAPS_BY_NAME["proxy_sockets"].pin_name({}) == maps.MAPS_BY_NAME["proxy_sockets"].pin_name(DEFAULTS)


def test_every_size_setting_exists():
    for spec in maps.MAPS:
        if not isinstance(spec.size_setting, int):
            assert spec.size_setting in dp_settings.SPEC, spec.name


def test_reconciled_maps_have_key_and_value_structs():
    for name in maps.RECONCILED:
        spec = maps.MAPS_BY_NAME[name]
        assert spec.key_size() and spec.value_size()
        assert spec.key in [cls for dummy, cls in abi.C_STRUCTS] and spec.value in [cls for dummy, cls in abi.C_STRUCTS]


def test_c_names_are_prefixed_and_types_are_known_to_bcc():
    for spec in maps.MAPS:
        assert spec.c_name() == "pal_" + spec.name
        assert spec.map_type in maps.MAP_TYPE_NAMES
