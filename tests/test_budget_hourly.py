"""max_hourly (DESIGN.md "Budgets"): the burn rate of the account as this
mount sees it (pods that bill at their priceHr, disks at theirs, requests
in flight) plus the one about to be rented; a mkdir of a pod or a disk
that would pass it fails with EDQUOT before anything is sent, and `log`
gives the sum. `cat budget` shows burn_hourly, max_hourly, spent_24h."""

import calendar
import errno
import os
import threading
import time

import pytest

from conftest import err_of

from test_tree import all_pages

BASE = "max_pods = 100\n"
POD = "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"
BILLS = ("PROVISIONING", "PENDING", "ACTIVE")


def budget(m):
    out = {}
    for line in m.read("budget").splitlines():
        k, _, v = line.partition("=")
        out[k.strip()] = v.strip()
    return out


def burn_from_api(api):
    total, seen = 0.0, set()
    for p in all_pages(api, "/pods/"):
        if p["id"] in seen:     # the fixture lists one pod twice
            continue
        seen.add(p["id"])
        if p["status"] in BILLS:
            total += p.get("priceHr") or 0.0
        elif p["status"] == "STOPPED":
            sp = p.get("stoppedPriceHr")
            total += sp if sp is not None else (p.get("priceHr") or 0.0)
    for d in all_pages(api, "/disks/"):
        total += d.get("priceHr") or 0.0
    return total


def posts(api, suffix):
    return [r for r in api.requests()
            if r["method"] == "POST" and r["path"].rstrip("/").endswith(suffix)]


@pytest.fixture
def m(api, make_mount):
    return make_mount(api)


def test_budget_file(api, m):
    m.write("config", BASE)
    b = budget(m)
    assert set(b) == {"burn_hourly", "max_hourly", "spent_24h"}
    assert float(b["burn_hourly"]) == pytest.approx(burn_from_api(api), abs=1e-3)
    assert b["max_hourly"] == ""
    w = api.get("/billing/wallet?limit=100")
    now = time.time()
    spent = 0.0
    for r in w["recent_billings"]:
        at = r.get("last_billed_at") or r.get("created_at")
        t = calendar.timegm(time.strptime(at[:19], "%Y-%m-%dT%H:%M:%S")) if at else None
        if t is not None and now - t <= 86400:
            spent += r["amount_usd"]
    assert float(b["spent_24h"]) == pytest.approx(spent, abs=1e-3)
    m.write("config", BASE + "max_hourly = 123.5\n")
    assert budget(m)["max_hourly"] == "123.5"


def test_max_hourly_refuses_a_pod(api, m):
    m.write("config", BASE)
    burn = float(budget(m)["burn_hourly"])
    m.write("config", BASE + POD + "max_hourly = %.4f\n" % (burn + 0.01))
    assert err_of(lambda: os.mkdir(m.p("pods", "p1"))) == errno.EDQUOT
    assert not posts(api, "/pods")
    log = m.log()
    assert "max_hourly" in log and "%.4f" % burn in log
    # with room for it, the same mkdir rents
    m.write("config", BASE + POD + "max_hourly = %.4f\n" % (burn + 1000))
    os.mkdir(m.p("pods", "p1"))
    assert len(posts(api, "/pods")) == 1
    price = float(m.read("pods", "p1", "price") or 0) or None
    after = float(budget(m)["burn_hourly"])
    assert after > burn


def test_a_pod_counts_from_its_mkdir(api, m):
    """The first pod counts as soon as it was asked for: a second one that
    fits alone but not beside it is refused."""
    m.write("config", BASE)
    burn = float(budget(m)["burn_hourly"])
    m.write("config", BASE + POD + "max_hourly = %.4f\n" % (burn + 1000))
    os.mkdir(m.p("pods", "a"))
    body = posts(api, "/pods")[-1]["body"]
    price = [p for p in all_pages(api, "/pods/") if p["name"] == "a"][0]["priceHr"]
    m.write("config", BASE + POD + "max_hourly = %.4f\n" % (burn + price * 1.5))
    assert err_of(lambda: os.mkdir(m.p("pods", "b"))) == errno.EDQUOT
    assert len(posts(api, "/pods")) == 1
    assert body["pod"]["name"] == "a"


def test_a_request_in_flight_counts(api, m):
    """While a pod's create is on the wire (no listing or answer shows it
    with a price yet), it counts at the price it is rented at: a disk's
    mkdir meanwhile (another directory, so the kernel lets it run beside
    the pod's) that fits beside what bills but not beside that pod is
    refused."""
    m.write("config", BASE + POD + "max_hourly = 100000\n")
    os.mkdir(m.p("pods", "a"))
    price = [p for p in all_pages(api, "/pods/") if p["name"] == "a"][0]["priceHr"]
    burn = float(budget(m)["burn_hourly"])
    m.write("config", BASE + POD + "disk.size = 5000\nmax_hourly = %.4f\n" % (burn + price + 0.01))
    api.admin("slow_create", {"secs": 20})
    api.admin("lag", {"list_secs": 60})    # no listing shows it meanwhile
    result = {}
    t = threading.Thread(target=lambda: result.update(rc=err_of(
        lambda: os.mkdir(m.p("pods", "b")))))
    t.start()
    try:
        deadline = time.time() + 30
        while "mkdir /pods/b: renting" not in m.log() and time.time() < deadline:
            time.sleep(0.1)
        assert err_of(lambda: os.mkdir(m.p("disks", "d"))) == errno.EDQUOT
        assert "1 requests in flight" in m.log()
    finally:
        api.admin("release")
        t.join(60)
    assert result.get("rc") == 0
    assert not posts(api, "/disks")


def test_max_hourly_refuses_a_disk(api, m):
    m.write("config", BASE)
    burn = float(budget(m)["burn_hourly"])
    m.write("config", BASE + "disk.size = 5000\nmax_hourly = %.4f\n" % (burn + 0.01))
    assert err_of(lambda: os.mkdir(m.p("disks", "big"))) == errno.EDQUOT
    assert not posts(api, "/disks")
    assert "max_hourly" in m.log()
    m.write("config", BASE + "disk.size = 5000\nmax_hourly = %.4f\n" % (burn + 100))
    os.mkdir(m.p("disks", "big"))
    assert len(posts(api, "/disks")) == 1
    price = float(m.read("disks", "big", "price"))
    assert float(budget(m)["burn_hourly"]) == pytest.approx(burn + price, abs=1e-3)


def test_max_hourly_is_top_level_only(api, m):
    with pytest.raises(OSError) as e:
        m.write("config", BASE + "[gpu*]\nmax_hourly = 3\n")
    assert e.value.errno == errno.EINVAL
