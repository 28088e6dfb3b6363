"""host_want (plugins/filter/want.py): the roles' one way to what a host's
datapath and L7 proxy want, from fleet_state's registered result."""

import json

import pytest

from ansible_collections.palisade.ebpf.plugins.filter.want import FilterModule
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import unpack_ipcache
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _fleet

from tests.support import policy_harness as h
from tests.support.l7_policies import DEATHSTAR, REMOTE_XWING, TIEFIGHTER, deathstar_ingress, l7_port

host_want = FilterModule().filters()["host_want"]


@pytest.fixture(scope="module")
def fleet_state():
    lab = h.Lab([DEATHSTAR, TIEFIGHTER, REMOTE_XWING],
                [deathstar_ingress("landing", {"toPorts": l7_port(80, {"method": "POST", "path": "/v1/request-landing"})})],
                nodes={"node1": "192.0.2.11", "node2": "192.0.2.12"})
    state, dummy = _fleet.fleet_state(lab.hostvars, None, lambda: lab.documents, {}, use_cache=False)
    return json.loads(json.dumps(state))  # as a playbook sees the registered result


def test_the_datapath_want_is_the_datapath_modules_arguments(fleet_state):
    want = host_want(fleet_state, "node1", "datapath")
    assert sorted(want) == ["endpoints", "identities", "ipcache_packed", "policies"]
    assert [e["key"] for e in want["endpoints"]] == ["default/deathstar", "default/tiefighter"]
    assert dict(unpack_ipcache(want["ipcache_packed"]))["192.0.2.11/32"] == 1


def test_the_proxy_want_is_what_the_l7proxy_role_reads(fleet_state):
    want = host_want(fleet_state, "node1", "l7proxy")
    assert sorted(want) == ["endpoints", "ipcache_version", "rules", "rulesets"]
    assert list(want["endpoints"]) == ["10.1.1.10"]
    assert want["ipcache_version"] == {"fleet": fleet_state["objects"]["fleet_table"],
                                       "host": fleet_state["hosts"]["node1"]["datapath"][0]}
    assert host_want(fleet_state, "node2", "l7proxy")["endpoints"] == {}  # palisade_l7_enabled is false there
