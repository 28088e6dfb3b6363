# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render the eBPF C of bpf/ for one host (controller side: needs jinja2).

The rendering depends on host-level settings and the host's bpffs directory
(pin paths of the maps) only; its sha256 is the program cache key on the
host, so an unchanged rendering is never compiled twice.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes as ct
import json
import os

import jinja2

from ansible_collections.palisade.ebpf.plugins.module_utils import _defaults
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import abi, maps, settings as dp_settings

BPF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))), "bpf")
ENTRY_TEMPLATE = "datapath.c.j2"

# Constants of abi.py the templates use (as {{ c.NAME }}).
_C_CONSTANTS = (
    "DIR_INGRESS", "DIR_EGRESS", "EP_F_ENFORCE_INGRESS", "EP_F_ENFORCE_EGRESS", "POL_F_DENY", "POL_F_ALLOW",
    "POL_F_L7", "POLICY_DIR_EGRESS_BIT", "CT_F_EGRESS", "CT_F_REDIRECT", "CT_F_SEEN_REPLY", "CT_F_CLOSING",
    "CT_F_PROXY", "EP_F_L7_INGRESS", "EP_F_L7_EGRESS",
)


def map_declaration(spec, settings, bpffs_dir):
    """The C declaration of one pinned map (bcc creates it on first compile,
    and reuses the pinned one on every later compile)."""
    path = os.path.join(bpffs_dir, "maps", spec.pin_name(settings))
    size = spec.max_entries(settings)
    if spec.map_type == maps.BPF_MAP_TYPE_RINGBUF:
        # bcc has no pinned flavour of BPF_RINGBUF_OUTPUT: the same table
        # struct, in a "maps/ringbuf:<pin path>" section.
        return (
            "struct %(c)s_table_t {\n\tint key;\n\tu32 leaf;\n"
            "\tint (*ringbuf_output)(void *, u64, u64);\n\tu32 max_entries;\n};\n"
            '__attribute__((section("maps/ringbuf:%(path)s")))\n'
            "struct %(c)s_table_t %(c)s = { .max_entries = %(size)d };"
        ) % {"c": spec.c_name(), "path": path, "size": size}
    if spec.map_type == maps.BPF_MAP_TYPE_SOCKMAP:
        return 'BPF_TABLE_PINNED("sockmap", u32, u64, %s, %d, "%s", 0);' % (spec.c_name(), size, path)
    # Array maps take an integer key (the kernel checks the key's BTF type).
    kname = "u32" if spec.map_type == maps.BPF_MAP_TYPE_PERCPU_ARRAY else "struct " + _c_struct_name(spec.key)
    vname = "struct " + _c_struct_name(spec.value)
    return 'BPF_TABLE_PINNED("%s", %s, %s, %s, %d, "%s", %d);' % (
        maps.MAP_TYPE_NAMES[spec.map_type], kname, vname, spec.c_name(), size, path, spec.flags)


def _c_struct_name(cls):
    for name, candidate in abi.C_STRUCTS:
        if candidate is cls:
            return name
    raise KeyError(cls.__name__)


def layout_asserts():
    lines = []
    for name, cls in abi.C_STRUCTS:
        lines.append('_Static_assert(sizeof(struct %s) == %d, "struct %s: size differs from abi.py");'
                     % (name, ct.sizeof(cls), name))
        for field in cls._fields_:
            lines.append('_Static_assert(__builtin_offsetof(struct %s, %s) == %d, "struct %s.%s: offset differs from abi.py");'
                         % (name, field[0], getattr(cls, field[0]).offset, name, field[0]))
    return "\n".join(lines)


def _c_constants():
    constants = dict((name, getattr(abi, name)) for name in _C_CONSTANTS)
    # The mark of flows handed to the L7 proxy: the owned ip rule (and the
    # TPROXY fallback) match it, so it comes from the same default.
    constants.update(L7_MARK=_defaults.L7_MARK, L7_MARK_MASK=_defaults.L7_MARK_MASK)
    return constants


def render(settings, bpffs_dir):
    """Rendered C source for these (normalised or raw) settings."""
    settings = dp_settings.normalise(settings)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(BPF_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    context = {
        "settings": settings,
        "settings_json": json.dumps(settings, sort_keys=True),
        "bpffs_dir": bpffs_dir,
        "maps": dict((spec.name, map_declaration(spec, settings, bpffs_dir)) for spec in maps.MAPS),
        "layout_asserts": layout_asserts(),
        "reasons": sorted(abi.REASONS.items()),
        "c": _c_constants(),
    }
    return env.get_template(ENTRY_TEMPLATE).render(**context)
