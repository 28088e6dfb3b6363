# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The l7proxy reconciler's result (module_utils/_l7proxy/process.py) without
HAProxy or a kernel: the process, the socket map and the sysctl are stand-ins,
the map files and the module's state file are real files in a temporary
directory. The real thing runs in tests/integration/test_l7proxy_module.py."""

import json
import os

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils import _artifact as artifact
from ansible_collections.palisade.ebpf.plugins.module_utils._l7proxy import process, runtime, sockmap

MAPS = {"endpoints": {"10.1.1.10": "p1"}, "rules": {"p1": "r-allow", "p2": "r-deny"}}


CONFIG = "global\n    master-worker\n"


def sizes(item):
    return dict((name, m["entries"]) for name, m in item["maps"].items())


class FakeService(object):
    """HAProxy as the reconciler sees it: a master pid, or none."""

    def __init__(self, directory, master=None):
        self.config = os.path.join(directory, runtime.CONFIG_NAME)
        self.sock = os.path.join(directory, runtime.SOCKET_NAME)
        self.pidfile = os.path.join(directory, runtime.PID_NAME)
        self.master = master
        self.calls = []

    def master_pid(self):
        return self.master

    def pids(self):
        return [self.master]

    def start(self):
        self.calls.append("start")
        self.master = 4242
        return self.master

    def reload(self):
        self.calls.append("reload")
        return self.master

    def stop(self):
        self.calls.append("stop")
        self.master = None
        return True


@pytest.fixture
def proxy(tmp_path, monkeypatch):
    directory = tmp_path / "l7proxy"
    directory.mkdir()
    (directory / runtime.CONFIG_NAME).write_text(CONFIG)
    bpffs = tmp_path / "bpffs"
    pin = sockmap.pin_path(str(bpffs))
    os.makedirs(os.path.dirname(pin))
    open(pin, "w").close()  # the pin's existence is all the reconciler checks before the stand-ins below
    demux = tmp_path / "tcp_early_demux"
    demux.write_text("1\n")
    monkeypatch.setattr(process, "EARLY_DEMUX", str(demux))
    service = FakeService(str(directory))
    monkeypatch.setattr(process, "make_service", lambda params: service)
    slot = {"cookie": None}

    def reconcile(map_path, listener, check_mode):
        changed = slot["cookie"] != 99
        if not check_mode:
            slot["cookie"] = 99
        return changed, 99

    def unregister(map_path, check_mode):
        had = slot["cookie"] is not None
        if not check_mode:
            slot["cookie"] = None
        return had

    monkeypatch.setattr(sockmap, "find_listener", lambda port, pids: sockmap.Listener(817743, pids[0], 5))
    monkeypatch.setattr(sockmap, "reconcile", reconcile)
    monkeypatch.setattr(sockmap, "unregister", unregister)
    monkeypatch.setattr(runtime, "map_refs", lambda sock: {})  # no runtime map to bring in line

    def run(check=False, **params):
        args = {"state": "present", "dir": str(directory), "port": 15001, "maps": MAPS, "bpffs_dir": str(bpffs)}
        args.update(params)
        return process.run(args, check)

    return {"run": run, "service": service, "dir": directory, "demux": demux, "slot": slot}


def test_check_mode_on_a_new_host_predicts_everything_and_writes_nothing(proxy):
    result = proxy["run"](check=True)
    assert result["changed"] is True and proxy["service"].calls == []
    assert result["changes"] == ["+ map endpoints: 1 entries", "+ map rules: 2 entries", "+ start haproxy",
                                 "+ register listener 127.0.0.1:15001 in the proxy socket map",
                                 "~ sysctl net.ipv4.tcp_early_demux: 1 -> 0"]
    assert result["before"] == {"running": False, "pid": None, "config": None, "maps": {}, "registered": False,
                                "tcp_early_demux": "1"}
    assert result["after"]["running"] is True and result["after"]["pid"] is None  # not started: no pid yet
    assert sizes(result["after"]) == {"endpoints": 1, "rules": 2} and result["after"]["registered"] is True
    assert result["after"]["tcp_early_demux"] == "0" and len(result["after"]["config"]) == 16
    assert result["diff"]["before"] == ("haproxy: not running\nlistener not registered in the proxy socket map\n"
                                        "sysctl net.ipv4.tcp_early_demux = 1\n")
    assert "haproxy: running, master pid not known yet, configuration %s\n" % result["after"]["config"] \
        in result["diff"]["after"]
    assert sorted(os.listdir(str(proxy["dir"]))) == [runtime.CONFIG_NAME]
    assert proxy["demux"].read_text() == "1\n"


def test_first_run_then_a_second_that_changes_nothing(proxy):
    first = proxy["run"]()
    assert first["changed"] is True and proxy["service"].calls == ["start"]
    assert first["after"] == {"running": True, "pid": 4242, "config": first["after"]["config"],
                              "maps": first["after"]["maps"], "registered": True, "tcp_early_demux": "0"}
    assert sizes(first["after"]) == {"endpoints": 1, "rules": 2}
    assert proxy["demux"].read_text() == "0\n"
    second = proxy["run"]()
    assert second["changed"] is False and second["changes"] == []
    assert second["before"] == second["after"] == first["after"]
    assert proxy["service"].calls == ["start"]


def test_a_changed_map_and_configuration(proxy):
    proxy["run"]()
    (proxy["dir"] / runtime.CONFIG_NAME).write_text(CONFIG + "    maxconn 10\n")
    result = proxy["run"](maps={"endpoints": MAPS["endpoints"], "rules": {"p1": "r-other"}})
    assert result["changes"] == ["~ map rules: ~1 -1", "~ reload haproxy (configuration changed)"]
    assert sizes(result["before"])["rules"] == 2 and sizes(result["after"])["rules"] == 1
    assert result["before"]["maps"]["endpoints"] == result["after"]["maps"]["endpoints"]
    assert result["before"]["config"] != result["after"]["config"]
    assert result["reloaded"] is True and proxy["service"].calls == ["start", "reload"]
    # same size, other content: the digest tells
    result = proxy["run"](maps={"endpoints": MAPS["endpoints"], "rules": {"p1": "r-third"}})
    assert result["changes"] == ["~ map rules: ~1"]
    assert result["before"]["maps"]["rules"]["sha256"] != result["after"]["maps"]["rules"]["sha256"]
    assert "map rules: 1 entries, sha256 %s\n" % result["before"]["maps"]["rules"]["sha256"] in result["diff"]["before"]
    assert "map rules: 1 entries, sha256 %s\n" % result["after"]["maps"]["rules"]["sha256"] in result["diff"]["after"]


def test_absent_summarises_what_it_removes(proxy):
    proxy["run"]()
    result = proxy["run"](state="absent")
    assert result["changes"][:2] == ["- stop haproxy", "- unregister the proxy listener from the proxy socket map"]
    assert result["before"]["registered"] is True and proxy["slot"]["cookie"] is None
    assert "- remove map rules (%s)" % runtime.map_path(str(proxy["dir"]), "rules") in result["changes"]
    assert result["before"]["running"] is True and sizes(result["before"]) == {"endpoints": 1, "rules": 2}
    assert result["after"] == {"running": False, "pid": None, "config": None, "maps": {}, "registered": False,
                               "tcp_early_demux": "0"}
    assert sorted(os.listdir(str(proxy["dir"]))) == [runtime.CONFIG_NAME]


def test_gathered_reads_the_map_files_back_in_the_input_schema(proxy):
    assert proxy["run"](state="gathered") == {"changed": False, "gathered": {"maps": {}}}
    proxy["run"](ipcache_packed="")
    result = proxy["run"](state="gathered")
    assert result == {"changed": False, "gathered": {"maps": dict(MAPS, identities={})}}
    with open(os.path.join(str(proxy["dir"]), process.STATE_NAME)) as handle:
        assert json.load(handle)["maps"] == ["endpoints", "identities", "rules"]


def test_identities_come_from_the_ip_table_the_datapath_applied(proxy, tmp_path):
    copies = artifact.LocalCopies(str(tmp_path / "datapath"))
    versions = {"fleet": copies.write("fleet", {"ipcache": {"10.1.1.10/32": 300, "192.0.2.11/32": 6}}),
                "host": copies.write("host", {"endpoints": {}, "policies": {}, "identities": {},
                                              "overrides": {"192.0.2.11/32": 1}})}
    result = proxy["run"](ipcache_version=versions, datapath_state_dir=str(tmp_path / "datapath"))
    assert "+ map identities: 2 entries" in result["changes"]
    text = (proxy["dir"] / "identities.map").read_text()
    assert text == "10.1.1.10 300\n192.0.2.11 1\n"  # the host's own row wins
    # A version the datapath has not applied: the proxy does not guess.
    stale = dict(versions, fleet="0" * 64)
    with pytest.raises(runtime.L7ProxyError, match="the datapath's fleet artifact in .* is version .*, not 000000000000"):
        proxy["run"](ipcache_version=stale, datapath_state_dir=str(tmp_path / "datapath"))
    checked = proxy["run"](check=True, ipcache_version=stale, datapath_state_dir=str(tmp_path / "datapath"))
    assert checked["changed"] is False and "identities.map follows the IP table once the datapath applies it" \
        in checked["warnings"][0]
    with pytest.raises(runtime.L7ProxyError, match="ipcache_packed and ipcache_version both give identities.map"):
        proxy["run"](ipcache_version=versions, ipcache_packed="")
