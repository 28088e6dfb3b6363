# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The result contract of the reconciling modules (module_utils/_result.py):
what a task returns, and what --diff shows."""

from __future__ import absolute_import, division, print_function

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils import _result


class Exited(Exception):
    pass


class FakeModule(object):
    def __init__(self, diff):
        self._diff = diff
        self.warnings = []
        self.result = None

    def warn(self, text):
        self.warnings.append(text)

    def exit_json(self, **result):
        self.result = result
        raise Exited()


def exit_with(result, diff):
    module = FakeModule(diff)
    with pytest.raises(Exited):
        _result.exit_reconciled(module, result)
    return module


def test_reconciled_renders_one_line_per_object():
    result = _result.reconciled(True, ["a"], ["a", "b"], ["+ b"], "things", render=str.upper, extra=1)
    assert result["before"] == ["a"] and result["after"] == ["a", "b"] and result["changes"] == ["+ b"]
    assert result["diff"] == {"before": "A\n", "after": "A\nB\n", "before_header": "things", "after_header": "things"}
    assert result["extra"] == 1 and result["changed"] is True


def test_summarised_renders_a_whole_summary():
    def lines(item):
        return ["count %d" % item["count"]]

    result = _result.summarised(True, {"count": 1}, {"count": 2}, ["+ x"], "a summary", lines, writes=3)
    assert result["before"] == {"count": 1} and result["after"] == {"count": 2}
    assert result["diff"]["before"] == "count 1\n" and result["diff"]["after"] == "count 2\n"
    assert result["writes"] == 3


def test_diff_only_with_diff_and_changes_as_prepared():
    result = _result.reconciled(True, [], ["a"], ["+ a"], "things", warnings=["careful"])
    module = exit_with(dict(result), diff=True)
    assert module.warnings == ["careful"] and "warnings" not in module.result
    assert module.result["diff"]["prepared"] == "+ a\n" and module.result["diff"]["after"] == "a\n"
    module = exit_with(dict(result), diff=False)
    assert "diff" not in module.result and module.result["changes"] == ["+ a"]


def test_no_prepared_text_without_changes():
    module = exit_with(_result.reconciled(False, ["a"], ["a"], [], "things"), diff=True)
    assert "prepared" not in module.result["diff"]


def test_gathered_changes_nothing():
    module = exit_with(_result.gathered({"maps": {}}, dir="/x"), diff=True)
    assert module.result == {"changed": False, "gathered": {"maps": {}}, "dir": "/x"}
