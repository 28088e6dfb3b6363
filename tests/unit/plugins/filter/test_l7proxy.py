"""l7proxy_quote and l7proxy_map_text (plugins/filter/l7proxy.py): words and
map files HAProxy reads back unchanged."""

import pytest

from ansible_collections.palisade.ebpf.plugins.filter.l7proxy import FilterModule


def test_quote_and_map_text():
    filters = FilterModule().filters()
    assert sorted(filters) == ["l7proxy_map_text", "l7proxy_quote"]
    assert filters["l7proxy_quote"]("Access denied") == "'Access denied'"
    assert filters["l7proxy_map_text"]({"b": "2", "a": "1"}) == "a 1\nb 2\n"
    with pytest.raises(ValueError):
        filters["l7proxy_quote"]("two\nlines")
