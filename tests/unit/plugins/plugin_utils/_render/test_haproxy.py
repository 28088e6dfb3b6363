"""HAProxy rendering (plugin_utils/_render/haproxy.py) and the HAProxy
template (roles/l7proxy/templates/haproxy.cfg.j2): what the proxy wants
comes from real policies through the engine (plugin_utils/_want.py);
rendered files go through the real HAProxy, first ``-c`` and then a live run
whose answers must agree with policy_trace."""

import http.client
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import jinja2
import pytest
import yaml

from ansible_collections.palisade.ebpf.plugins.filter.l7proxy import FilterModule
from ansible_collections.palisade.ebpf.plugins.plugin_utils._render import haproxy as config
from ansible_collections.palisade.ebpf.plugins.plugin_utils._want import proxy_want

from ansible_collections.palisade.ebpf.plugins.module_utils import _defaults
from tests.support import policy_harness as h
from tests.support.l7_policies import (
    DEATHSTAR,
    TIEFIGHTER,
    XWING,
    cnp,
    deathstar_ingress,
    identity,
    l4_port,
    l7_port,
    share_of,
)
from tests.support.paths import REPO

ROOT = Path(REPO)
HAPROXY = "/usr/sbin/haproxy"
needs_haproxy = pytest.mark.skipif(not os.access(HAPROXY, os.X_OK), reason="HAProxy is not installed")


def test_quoting_and_map_text():
    assert config.hap_quote("a b$c\\d\"e#") == "'a b$c\\d\"e#'"
    assert config.hap_quote("it's $x \\ \"") == '"it\'s \\$x \\\\ \\""'
    with pytest.raises(ValueError):
        config.hap_quote("a\nb")
    assert config.map_text({"b/1": "r2", "a/0": "-", "10.0.0.1": "p1"}) == "10.0.0.1 p1\na/0 -\nb/1 r2\n"
    with pytest.raises(ValueError):
        config.map_text({"a b": "x"})


# --- the template through the real HAProxy -------------------------------------------------

def _collection_default(value):
    """A role default that only reads the palisade.ebpf.defaults lookup,
    evaluated; None for any other expression."""
    match = re.fullmatch(r"\{\{ lookup\('palisade\.ebpf\.defaults', '(\w+)'\) \}\}", value)
    return _defaults.DEFAULTS[match.group(1)] if match else None


def role_vars(tmp_path, want, **overrides):
    """The roles' own defaults (fleet: the port; l7proxy: the rest), with a
    scratch directory for the one that is an expression."""
    values = {}
    for role in ("fleet", "l7proxy"):
        defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
        for name, value in defaults.items():
            if isinstance(value, str) and "{{" in value:
                value = _collection_default(value)
            if value is not None:
                values[name] = value
    values.update({"palisade_l7_proxy_dir": str(tmp_path), "l7proxy_want": want})
    values.update(overrides)
    return values


def render(tmp_path, want, identities=None, **overrides):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROOT / "roles/l7proxy/templates")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True)
    env.filters.update({"palisade.ebpf." + name: f for name, f in FilterModule().filters().items()})
    (tmp_path / "identities.map").write_text(config.map_text(identities or {}))
    (tmp_path / "endpoints.map").write_text(config.map_text(want["endpoints"]))
    (tmp_path / "rules.map").write_text(config.map_text(want["rules"]))
    path = tmp_path / "haproxy.cfg"
    path.write_text(env.get_template("haproxy.cfg.j2").render(**role_vars(tmp_path, want, **overrides)))
    return path


def haproxy_check(path):
    return subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30, check=False)


# Regexes, header names and values with every character the config syntax cares about.
AWKWARD_RULE = {"method": "GET|HEAD", "path": "/it's/\\$[0-9]+ #x", "host": "a\"b c",
                "headers": ["X-A: v 'q' \"d\" $e #f \\g", "X#C$D: -x", "X-E: }", "X-B"],
                "headerMatches": [{"name": "X-M", "value": "1%", "mismatch": "REPLACE"},
                                  {"name": "X-N", "mismatch": "ADD"},
                                  {"name": "X-O", "value": "z", "mismatch": "DELETE"},
                                  {"name": "X-Q", "value": "it's"}]}


@needs_haproxy
def test_rendered_config_passes_haproxy_check(tmp_path):
    lab = h.Lab([DEATHSTAR, TIEFIGHTER, XWING], [
        deathstar_ingress("awkward", {"toPorts": l7_port(80, AWKWARD_RULE)},
                          {"fromEndpoints": [{"matchLabels": {"org": "alliance"}}], "toPorts": l4_port(80)}),
        cnp("eg", {"endpointSelector": {"matchLabels": {"class": "tiefighter"}},
                   "egress": [{"toPorts": l7_port(443, {"method": "GET"}, {})}]})])
    want = proxy_want(share_of(lab))
    assert len(want["rulesets"]) == 2 and len(want["endpoints"]) == 2
    path = render(tmp_path, want, {"10.1.1.10/32": 7, "0.0.0.0/0": 2},
                  palisade_l7_deny_message="Nope: it's \"denied\" $HOME #1")
    result = haproxy_check(path)
    assert result.returncode == 0, result.stderr + path.read_text()
    text = path.read_text()
    assert "acl %s_0 " % want["rulesets"][0]["id"] in text and "set-header X-M '1%%'" in text

    bad = render(tmp_path, want, palisade_l7_proxy_global_extra=["no-such-keyword 1"])
    result = haproxy_check(bad)
    assert result.returncode != 0 and "no-such-keyword" in result.stderr


@needs_haproxy
def test_rendered_config_without_rulesets_passes_haproxy_check(tmp_path):
    want = proxy_want(share_of(h.Lab([DEATHSTAR, TIEFIGHTER])))
    assert want == {"endpoints": {}, "rules": {}, "rulesets": []}
    result = haproxy_check(render(tmp_path, want))
    assert result.returncode == 0, result.stderr


SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"


@needs_haproxy
@pytest.mark.skipif(not os.path.exists(SYSTEMD_ANALYZE), reason="systemd-analyze is not installed (package systemd; make setup installs it)")
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    """The unit used on hosts that run systemd (this machine does not): the
    real systemd-analyze finds no error and no ignored line in it, and the
    commands it runs check and start the configuration the role writes."""
    render(tmp_path, proxy_want(share_of(h.Lab([DEATHSTAR, TIEFIGHTER]))))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROOT / "roles/l7proxy/templates")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True)
    values = role_vars(tmp_path, {}, ansible_managed="Managed by palisade.ebpf")
    unit = tmp_path / "palisade-l7proxy.service"
    unit.write_text(env.get_template("palisade-l7proxy.service.j2").render(**values))
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0 and str(unit) not in result.stderr, result.stderr + unit.read_text()
    text = unit.read_text()
    config_path = str(tmp_path / "haproxy.cfg")
    assert "ExecStartPre=%s -c -q -f %s" % (HAPROXY, config_path) in text
    assert "ExecStart=%s -Ws -f %s" % (HAPROXY, config_path) in text
    assert "ExecReload=/bin/kill -USR2 $MAINPID" in text and "Restart=always" in text

    unit.write_text(text.replace("Restart=always", "Restart=always\nRestartSecs=1"))
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert "RestartSecs" in result.stderr  # the check above can fail


# --- a live HAProxy answers as policy_trace says -----------------------------------------

CLIENT = {"default/tiefighter": "127.0.0.2", "default/xwing": "127.0.0.4"}
SERVER = "127.0.0.3"


def free_port(address):
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def live_config(path, port):
    """The rendered file, listening plainly on SERVER and answering itself
    (no transparent socket, no upstream: those need privileges)."""
    text = path.read_text()
    text = re.sub(r"bind 127\.0\.0\.1:\d+ transparent", "bind %s:%d" % (SERVER, port), text)
    head, dummy, tail = text.partition("\nbackend palisade_upstream\n")
    assert tail, "the template's backend section moved"
    return head + ("\nbackend palisade_upstream\n"
                   "    http-request return status 200 content-type text/plain lf-string \"passed"
                   " x-m=[%[req.fhdr(x-m)]] x-n=%[req.fhdr_cnt(x-n)] x-o=%[req.fhdr_cnt(x-o)]\"\n")


def request(port, source, method, path, headers):
    conn = http.client.HTTPConnection(SERVER, port, timeout=5, source_address=(source, 0))
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@needs_haproxy
def test_live_haproxy_allows_and_denies_as_policy_trace_says(tmp_path):
    port = free_port(SERVER)
    # Like AWKWARD_RULE, but every part can be sent on the wire (a request
    # target has no raw space or '#'; the Host header is the test's address).
    awkward = dict(AWKWARD_RULE, host=None, path="/it's/\\$[0-9]+")
    lab = h.Lab([DEATHSTAR, TIEFIGHTER, XWING], [
        deathstar_ingress("landing", {"fromEndpoints": [{"matchLabels": {"org": "empire"}}],
                                      "toPorts": l7_port(port, {"method": "POST", "path": "/v1/request-landing"})},
                          {"fromEndpoints": [{"matchLabels": {"org": "alliance"}}],
                           "toPorts": l7_port(port, awkward)}),
        cnp("tie-egress", {"endpointSelector": {"matchLabels": {"class": "tiefighter"}},
                           "egress": [{"toEndpoints": [{"matchLabels": {"class": "deathstar"}}],
                                       "toPorts": l7_port(port, {"headers": ["X-Ship: tie"]})}]})])
    want = proxy_want(share_of(lab))
    # The lab's addresses move to loopback ones this test can use.
    moved = {"10.1.1.10": SERVER, "10.1.1.20": CLIENT["default/tiefighter"], "10.1.1.30": CLIENT["default/xwing"]}
    want["endpoints"] = {moved[ip]: key for ip, key in want["endpoints"].items()}
    identities = {moved[e["ipv4"]] + "/32": identity(lab, "default/" + e["name"]) for e in lab.endpoints}
    path = render(tmp_path, want, identities)
    live = tmp_path / "live.cfg"
    live.write_text(live_config(path, port))
    result = haproxy_check(live)
    assert result.returncode == 0, result.stderr

    awkward_headers = {"X-A": "v 'q' \"d\" $e #f \\g", "X#C$D": "-x", "X-E": "}", "X-B": "1", "X-Q": "it's",
                       "X-M": "wrong", "X-O": "y"}
    cases = [  # (client, method, path, headers, expected status)
        ("default/tiefighter", "POST", "/v1/request-landing", {"X-Ship": "tie"}, 200),
        ("default/tiefighter", "POST", "/v1/request-landing", {}, 403),                # egress refuses
        ("default/tiefighter", "PUT", "/v1/request-landing", {"X-Ship": "tie"}, 403),  # ingress refuses
        ("default/tiefighter", "POST", "/v1/request-landing?x=1", {"X-Ship": "tie"}, 403),
        ("default/xwing", "GET", "/it's/$12", awkward_headers, 200),
        ("default/xwing", "HEAD", "/it's/$12", awkward_headers, 200),
        ("default/xwing", "GET", "/it's/12", awkward_headers, 403),
        ("default/xwing", "POST", "/it's/$12", awkward_headers, 403),
        ("default/xwing", "GET", "/it's/$12", dict(awkward_headers, **{"X-Q": "its"}), 403),
        ("default/xwing", "GET", "/it's/$12", dict(awkward_headers, **{"X#C$D": "x"}), 403),
        ("default/xwing", "GET", "/it's/$12", dict(awkward_headers, **{"X-A": "v 'q'"}), 403),
        ("default/xwing", "GET", "/it's/$12", {k: v for k, v in awkward_headers.items() if k != "X-B"}, 403),
    ]
    probes = [h.probe(client, "default/deathstar", port, http={"method": m, "path": p, "headers": hd})
              for client, m, p, hd, dummy in cases]
    verdicts = [r["verdict"] for r in lab.trace(probes)]
    assert verdicts == ["allow" if c[4] == 200 else "deny" for c in cases]  # the expectations are trace's

    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(live)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((SERVER, port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "HAProxy did not start"
                time.sleep(0.05)
        answers = [request(port, CLIENT[client], method, target, headers)
                   for client, method, target, headers, dummy in cases]
        assert [status for status, dummy in answers] == [c[4] for c in cases], answers
        for (status, body), case in zip(answers, cases):
            if status == 403:
                assert body.strip() == "Access denied"
        # The xwing's header mutations reached the upstream: X-M replaced
        # (with a literal '%'), an empty X-N added, the wrong X-O deleted.
        assert answers[4][1] == "passed x-m=[1%] x-n=1 x-o=0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
