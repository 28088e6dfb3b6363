# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures and checks shared by the integration tests (root, the real kernel).

- ``lab_factory``: lab fleets (tools/fleetlab.Lab) that are up when made and
  removed after the test module;
- ``netns_factory`` / ``module_netns_factory``: scratch network namespaces
  (tests/support/kernel.Netns), deleted by name after the test or the module;
- ``failure_hooks``: callables run after any failed test of the module, so
  that the next test sets up again what it needs instead of trusting state
  a failure may have left half changed;
- the leftover check (autouse, per module): a snapshot of everything the
  tests may create (tests/support/leftovers.py), taken before the module's
  first test and after its last teardown; anything new fails the module;
- as root, a module whose every test skipped fails the session: a missing
  tool or package must not pass as a green run.

The helpers the tests call directly (``sh``, ``Netns``, ``run_module``) live
in tests/support/kernel.py: a conftest is not importable under pytest's
importlib mode.
"""

import copy
import os

import pytest

from tests.support import kernel, leftovers
from tools.fleetlab import Lab

IS_ROOT = os.geteuid() == 0
_MODULES = {}   # module path -> {"tests": set of node ids, "skipped": {node id: reason}}


# --- every test module: results, failures, leftovers ---------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # pylint: disable=unused-argument
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.palisade_call_report = report


def pytest_runtest_logreport(report):
    entry = _MODULES.setdefault(report.nodeid.split("::")[0], {"tests": set(), "skipped": {}})
    if report.when == "setup":
        entry["tests"].add(report.nodeid)
    if report.skipped and report.when in ("setup", "call") and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        entry["skipped"][report.nodeid] = reason


def pytest_sessionfinish(session, exitstatus):  # pylint: disable=unused-argument
    if not IS_ROOT:
        return  # tests/conftest.py skips every integration test without root, on purpose
    skipped = dict((module, entry) for module, entry in sorted(_MODULES.items())
                   if entry["tests"] and set(entry["skipped"]) == entry["tests"])
    if not skipped:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for module, entry in skipped.items():
        reasons = sorted(set(entry["skipped"].values()))
        line = "FAILED: every test of %s skipped although running as root: %s" % (module, "; ".join(reasons))
        if reporter is not None:
            reporter.write_line(line, red=True, bold=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="module")
def failure_hooks():
    """A list: append callables to run after any failed test of the module."""
    return []


@pytest.fixture(autouse=True)
def _after_a_failed_test(request, failure_hooks):
    yield
    report = getattr(request.node, "palisade_call_report", None)
    if report is not None and report.failed:
        for hook in failure_hooks:
            hook()


def _state_markers(tmp_path_factory):
    """Strings in the command line of a process that runs from a test's
    state: the labs' state roots and this session's temporary directory."""
    return tuple(root + "/" for root in leftovers.STATE_ROOTS) + (str(tmp_path_factory.getbasetemp()) + "/",)


@pytest.fixture(scope="module", autouse=True)
def no_leftovers(request, tmp_path_factory):
    """Fail the module if, after all its teardowns, the machine holds
    something of what tests create that it did not hold before."""
    if not IS_ROOT:
        yield
        return
    markers = _state_markers(tmp_path_factory)
    before = leftovers.snapshot(markers)
    yield
    new = leftovers.left_behind(before, markers)
    if new:
        pytest.fail("%s left behind:\n%s" % (request.module.__name__, leftovers.describe(new)), pytrace=False)


# --- scratch namespaces ----------------------------------------------------------------------------

def _netns_maker():
    made = []

    def make(netns):
        """``netns``: a kernel.Netns (or a subclass) or a name -> the namespace, created."""
        netns = kernel.Netns(netns) if isinstance(netns, str) else netns
        made.append(netns)  # before create(): a half-made namespace is deleted too
        return netns.create()
    return make, made


@pytest.fixture
def netns_factory():
    """make(netns or name) -> a scratch network namespace, deleted after the test."""
    make, made = _netns_maker()
    yield make
    for netns in reversed(made):
        netns.delete()


@pytest.fixture(scope="module")
def module_netns_factory():
    """make(netns or name) -> a scratch network namespace, deleted after the module."""
    make, made = _netns_maker()
    yield make
    for netns in reversed(made):
        netns.delete()


# --- lab fleets --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab_factory(tmp_path_factory, failure_hooks):
    """make(prefix, hosts, namespaces=None, policies=None, environment=None)
    -> a tools.fleetlab.Lab, up (lab.yml present; that run is its
    ``first_up``), removed (lab.yml absent) after the module. The prefix
    must be the module's own."""
    made = []

    def make(prefix, hosts, namespaces=None, policies=None, environment=None):
        lab = Lab(tmp_path_factory.mktemp(prefix), prefix, copy.deepcopy(hosts), namespaces=copy.deepcopy(namespaces),
                  policies=copy.deepcopy(policies), environment=environment)
        made.append((lab, copy.deepcopy(lab.hosts), copy.deepcopy(lab.extra)))
        failure_hooks.append(lab.invalidate)
        lab.first_up = lab.up()
        return lab

    yield make
    failed = []
    for lab, hosts, extra in reversed(made):
        # Back to the inventory the lab was made with: absent stops each of
        # its hosts' proxies and removes their pins, and finds every namespace
        # the lab created in its own record, whatever the tests declared since.
        lab.hosts, lab.extra = hosts, extra
        lab.write()
        run = lab.down(check=False)
        if run.rc != 0:
            failed.append("lab %s: lab.yml absent failed:\n%r" % (lab.prefix, run))
    assert not failed, "\n".join(failed)
