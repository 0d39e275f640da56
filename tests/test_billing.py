"""Money where faults meet (DESIGN.md, "Pods: status, cost, rent, return"):
every state that bills counts (guards, max_pods, cost), cost is never
shown lower than what primefs knows, a partial listing ends nothing, and
a template asking more than an offer includes pays the offer's per-unit
prices."""

import errno
import os
import time

import pytest

from conftest import err_of

HANG = 30  # seconds: only catches a hang

TEMPLATE = "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"


def wait_for(fn, limit=HANG):
    end = time.time() + limit
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.1)
    return False


def add(api, name, **kw):
    return api.admin("pods", {"add": [dict(name=name, **kw)]})["added"][0]


def ok_deletes(api, pid):
    return [r for r in api.requests()
            if r["method"] == "DELETE" and r["path"].rstrip("/").endswith("/" + pid)
            and r["status"] is not None and 200 <= r["status"] < 300]


def posts(api):
    return [r for r in api.requests()
            if r["method"] == "POST" and r["path"].rstrip("/").endswith("/pods")]


# ---- 1. every state that bills counts ----

def test_idle_acts_on_every_state_that_bills(api, make_mount, tmp_path):
    """An INSTALL_FAILED or STOPPED pod bills: its idle guard terminates it.
    A pod still coming up (PROVISIONING) has not started its idle time."""
    m = make_mount(api, options=(f"state={tmp_path / 'state'}", "guards_every=1",
                                 "pods_ttl=1"))
    failed = add(api, "failed", status="ACTIVE", installationStatus="ERROR",
                 installationFailure="Failed to pull image")
    stopped = add(api, "stopped", status="STOPPED", sshConnection=None, ip=None)
    coming = add(api, "coming", status="PROVISIONING", sshConnection=None, ip=None)
    assert m.read("pods/failed/status") == "INSTALL_FAILED\n"
    assert m.read("pods/stopped/status") == "STOPPED\n"
    for name in ("failed", "stopped", "coming"):
        m.write(f"pods/{name}/idle", "1s")
    assert "idle: terminates after 1s" in m.read("pods/failed/guards")
    assert wait_for(lambda: ok_deletes(api, failed) and ok_deletes(api, stopped)), m.log()
    assert "idle guard fired: terminating pod failed" in m.log()
    assert "idle guard fired: terminating pod stopped" in m.log()
    assert not ok_deletes(api, coming)


def billing_now(api):
    """Pods the API lists that bill."""
    pods, offset = [], 0
    while True:
        page = api.get(f"/pods/?offset={offset}&limit=100")
        pods += page["data"]
        offset += len(page["data"])
        if not page["data"] or offset >= page["total_count"]:
            break
    # (primefs counts a pod the listing shows twice once)
    return len({p["id"] for p in pods if p["status"] in ("PROVISIONING", "PENDING", "ACTIVE", "STOPPED")})


def test_stopped_pod_counts_toward_max_pods(api, make_mount):
    m = make_mount(api)
    n = billing_now(api)
    m.write("config", f"max_pods = {n + 1}\n" + TEMPLATE)
    stopped = add(api, "parked", status="STOPPED", sshConnection=None, ip=None)
    assert err_of(lambda: os.mkdir(m.p("pods/one-more"))) == errno.EDQUOT
    assert "max_pods" in m.log()
    assert posts(api) == []
    api.admin("pods", {"delete": [stopped]})
    assert wait_for(lambda: "parked" not in os.listdir(m.p("pods")))
    os.mkdir(m.p("pods/one-more"))  # one slot free once the stopped pod is gone
    assert len(posts(api)) == 1
