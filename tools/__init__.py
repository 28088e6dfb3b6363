# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Code that the tests and the benchmarks both use, owned by neither.

tests/ and bench/ import from here (``from tools import fleetgen``); nothing
here imports from tests/ or bench/, and neither imports from the other. It
runs on the controller (the venv) from a checkout and is not part of the
built collection (galaxy.yml build_ignore).
"""
