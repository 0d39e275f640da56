"""Money where faults meet (DESIGN.md, "Pods: status, cost, rent, return"):
every state that bills counts (guards, max_pods, cost), cost is never
shown lower than what primefs knows, a partial listing ends nothing, and
a template asking more than an offer includes pays the offer's per-unit
prices."""

import errno
import os
import subprocess
import time
from datetime import datetime, timezone

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
    # Checked at 1h: at 1s it may have fired (and the pod gone) before
    # a busy machine reads guards.
    m.write("pods/failed/idle", "1h")
    # The guard thread judges a new guard against the held listing just
    # after the write (on a busy machine, a moment after).
    assert wait_for(lambda: "(after 1h with no job running)" in
                    m.read("pods/failed/guards")), m.read("pods/failed/guards")
    for name in ("failed", "stopped", "coming"):
        m.write(f"pods/{name}/idle", "1s")
    assert wait_for(lambda: ok_deletes(api, failed) and ok_deletes(api, stopped)), m.log()
    assert "idle guard fired: terminating pod failed" in m.log()
    assert "idle guard fired: terminating pod stopped" in m.log()
    assert not ok_deletes(api, coming)
    assert "sees the pod ACTIVE, INSTALL_FAILED or STOPPED (none has yet)" in \
        m.read("pods/coming/guards")


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



# ---- 2. cost is never shown lower than what primefs knows ----

def iso_at(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def long_lived(api, rows, price=0.5, hours=1500):
    """A pod created `hours` ago at `price` USD/h, and `rows` hourly bills
    of `price` each, newest first, the newest billed until now."""
    now = time.time()
    pid = add(api, "long-x", status="ACTIVE", priceHr=price,
              createdAt=iso_at(now - hours * 3600))
    bills = [{"id": "b%d" % i, "created_at": iso_at(now - (i + 1) * 3600),
              "updated_at": iso_at(now - i * 3600), "last_billed_at": iso_at(now - i * 3600),
              "amount_usd": price, "currency": "USD", "resource_type": "compute",
              "resource_id": pid} for i in range(rows)]
    api.admin("wallet", {"recent_billings": bills})
    return pid


def wallet_offsets(api):
    return [int(r["query"]["offset"][0]) for r in api.requests()
            if r["path"].endswith("/billing/wallet")]


def test_cost_pages_the_wallet_with_no_cap(api, make_mount):
    """1,200 rows of a pod 1,500 h old: every page is read (not 10 × 100),
    and the cost is the sum of them all."""
    long_lived(api, 1200)
    m = make_mount(api)
    os.listdir(m.p("pods"))
    api.reset()
    cost = float(m.read("pods/long-x/cost"))
    assert 600 - 0.01 <= cost <= 600 + 0.01, cost
    assert sorted(wallet_offsets(api)) == list(range(0, 1200, 100))
    assert "estimate" not in m.log()


def test_cost_with_a_failed_page_is_at_least_price_times_hours(api, make_mount):
    """A later page of the wallet fails: the rows read are not all the
    pod's, so cost is at least priceHr × hours since creation (750, not the
    50 of the first page), and `log` says it is an estimate, once."""
    long_lived(api, 1200)
    api.fault(kind="500", match="GET /billing/wallet", query={"offset": "100"})
    m = make_mount(api)
    for _ in range(3):
        cost = float(m.read("pods/long-x/cost"))
        assert cost >= 750 - 0.01, cost
        m.write("ctl", "refresh\n")
        m.read("balance")  # the wallet fetched again, its later page failing again
    assert wallet_offsets(api).count(0) >= 3
    assert m.log().count("an estimate") == 1, m.log()
    assert "long-x" in [l for l in m.log().splitlines() if "an estimate" in l][0]
    # Once every row can be read again, cost is exact (600).
    api.clear_faults()
    m.write("ctl", "refresh\n")
    m.read("balance")
    assert abs(float(m.read("pods/long-x/cost")) - 600) < 0.01


def test_max_cost_acts_on_the_estimate(api, make_mount, tmp_path):
    """max_cost compares the estimate, not the 50 of the rows read."""
    pid = long_lived(api, 1200)
    api.fault(kind="500", match="GET /billing/wallet", query={"offset": "100"})
    m = make_mount(api, options=(f"state={tmp_path / 'state'}", "guards_every=1"))
    m.write("pods/long-x/max_cost", "700")
    assert wait_for(lambda: ok_deletes(api, pid)), m.log()
    assert "max_cost guard fired" in m.log()



# ---- 3. a partial listing ends nothing ----

def pod_gets(api, pid):
    return [r for r in api.requests()
            if r["method"] == "GET" and r["path"].rstrip("/").endswith("/pods/" + pid)]


def test_listing_that_skips_a_live_pod_ends_nothing(rig):
    """One listing omits the live pod `demo` (as offset paging does while
    pods are deleted elsewhere): its running job runs on to its own exit
    status, not `lost`, and its known_hosts line stays; GET /pods/{id} said
    it lives."""
    pid = rig.read("pods/demo/id").strip()
    with open(rig.p("pods/demo/run"), "w") as f:
        f.write("echo started; sleep 3; echo done\n")
    with open(rig.p("pods/demo/run"), "rb", buffering=0) as f:
        assert f.read(100) == b"started\n"
    assert pid in rig.known_hosts.read_text()
    exit_handle = open(rig.p("pods/demo/exit"), "rb", buffering=0)
    reader = subprocess.Popen(["cat"], stdin=exit_handle, stdout=subprocess.PIPE)
    exit_handle.close()
    try:
        rig.api.admin("pods", {"hide": {"id": pid, "pages": 1}})
        rig.write("ctl", "refresh\n")
        os.listdir(rig.p("pods"))  # the listing that lacks it
        assert wait_for(lambda: pod_gets(rig.api, pid)), rig.log()
        out, _ = reader.communicate(timeout=HANG)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert out == b"0\n", rig.log()
    rig.write("ctl", "refresh\n")
    assert "demo" in os.listdir(rig.p("pods"))
    assert pid in rig.known_hosts.read_text()
    assert "still shows: kept" in rig.log()


def test_two_listings_that_lack_a_pod_agree(rig):
    """With no answer from GET /pods/{id}, a second complete listing that
    lacks the pod too is what ends its job."""
    pid = rig.read("pods/demo/id").strip()
    with open(rig.p("pods/demo/run"), "w") as f:
        f.write("echo started; sleep 100\n")
    with open(rig.p("pods/demo/run"), "rb", buffering=0) as f:
        assert f.read(100) == b"started\n"
    rig.api.fault(kind="503", match="GET /pods/{id}")
    rig.api.admin("pods", {"hide": {"id": pid, "pages": 2}})
    rig.write("ctl", "refresh\n")
    os.listdir(rig.p("pods"))  # a listing that lacks it; its GET fails
    assert wait_for(lambda: pod_gets(rig.api, pid))
    assert pid in rig.known_hosts.read_text()
    rig.write("ctl", "refresh\n")
    os.listdir(rig.p("pods"))  # the second listing that lacks it agrees
    assert wait_for(lambda: pid not in rig.known_hosts.read_text()), rig.log()
    rig.api.clear_faults()
    rig.write("ctl", "refresh\n")
    assert "demo" in os.listdir(rig.p("pods"))  # listed again: the job was ended
    assert rig.read("pods/demo/exit") == "lost\n"


# ---- 4. a template asking more than an offer includes pays per unit ----

def priced_offer(template, dc, price, ppu, step):
    """A copy of a real /gpus offer: in stock, on demand at `price`, memory
    32 GB included, up to 512, `ppu` USD per GB-hour beyond in `step`s."""
    o = dict(template, dataCenter=dc, stockStatus="Available", isSpot=False,
             prepaidTime=None, images=["ubuntu_22_cuda_12"], provider="hyperstack",
             security="secure_cloud")
    o["prices"] = dict(template["prices"], onDemand=price, communityPrice=None)
    o["memory"] = {"minCount": 8, "defaultCount": 32, "maxCount": 512, "pricePerUnit": ppu,
                   "step": step, "defaultIncludedInPrice": True, "additionalInfo": None}
    return o


def test_mkdir_prices_resources_beyond_the_default(api, make_mount):
    """CHEAP-BASE is cheaper as listed but dearer with 256 GB more memory
    (2.0 + 256 × 0.01 = 4.56 against 2.5 + 256 × 0.001 = 2.756): mkdir
    rents by the true price, and max_price compares the true price."""
    from test_tree import all_offers
    h100 = [o for o in all_offers(api) if o["gpuType"] == "H100_80GB"]
    api.admin("offers", {"remove": {"gpuType": "H100_80GB"}})
    api.admin("offers", {"add": [priced_offer(h100[0], "CHEAP-BASE", 2.0, 0.01, 4),
                                 priced_offer(h100[0], "CHEAP-MEM", 2.5, 0.001, 1)]})
    m = make_mount(api)
    m.write("config", "max_pods = 100\n" + TEMPLATE)
    os.mkdir(m.p("pods/base"))  # the default memory: the listed price decides
    assert posts(api)[-1]["body"]["pod"]["dataCenterId"] == "CHEAP-BASE"
    m.write("config", "max_pods = 100\nmemory = 288\n" + TEMPLATE)
    os.mkdir(m.p("pods/big"))
    body = posts(api)[-1]["body"]["pod"]
    assert body["dataCenterId"] == "CHEAP-MEM" and body["memory"] == 288
    assert "costs 2.756 USD/h with the disk_size, vcpus and memory asked" in m.log()
    m.write("config", "max_pods = 100\nmemory = 288\nmax_price = 2.7\n" + TEMPLATE)
    n = len(posts(api))
    assert err_of(lambda: os.mkdir(m.p("pods/capped"))) == errno.ENOSPC
    assert len(posts(api)) == n
    assert "max_price = 2.7" in m.log()
