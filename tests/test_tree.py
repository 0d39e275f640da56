"""The mounted tree against the fake API over HTTPS: every file, sizes,
names, symlink, cost, statuses, and that reads cost no more API calls than
the listings need."""

import errno
import json
import math
import os
import re
import stat
import subprocess
import threading
import time
from datetime import datetime, timezone

import pytest

from conftest import err_of

SAFE = re.compile(r"^[A-Za-z0-9._-]+$")
OFFER_FILES = {"price", "stock", "provider", "data_center", "country", "region",
               "socket", "gpu_count", "gpu_memory", "vcpus", "memory", "disk",
               "spot", "prepaid", "cloud_id", "images", "security", "json"}
HISTORY_FILES = {"id", "name", "status", "gpu_type", "gpu_count", "provider", "image",
                 "price", "cost", "created", "ssh", "ip", "progress", "json", "offer", "log"}
POD_FILES = HISTORY_FILES | {"run", "exit", "deadline", "idle", "max_cost", "lease", "guards",
                             "collect"}
STREAMS = {"run", "exit", "log"}
POD_DIRS = {"jobs"}  # a pod's subdirectories, live or in history
HIST_DIRS = POD_DIRS | {"files"}  # and a history pod's: what collect brought back
POD_LINKS = {"fs", "home"}  # to .fs and .home, which no listing shows


def all_pages(api, path, key="data"):
    out, offset = [], 0
    while True:
        page = api.get(f"{path}?offset={offset}&limit=100")
        out += page[key]
        offset += len(page[key])
        if not page[key] or offset >= page["total_count"]:
            return out


def all_offers(api):
    out = []
    for ep in ("gpus", "multi-node"):
        page = 1
        while True:
            r = api.get(f"/availability/{ep}?page={page}&page_size=100")
            out += r["items"]
            if not r["items"] or len(out) >= r["totalCount"]:
                break
            page += 1
    return out


def test_root(mnt):
    assert sorted(os.listdir(mnt.path)) == sorted(
        ["availability", "cheapest", "pods", "history", "balance", "config", "log", "stats",
         "ctl", "ssh_keys", "plan", "disks", "disk_offers", "budget"])
    assert mnt.read("balance") == "100\n"
    assert stat.S_ISDIR(os.stat(mnt.p("pods")).st_mode)


def test_root_handles_open_when_the_daemon_ends(api, make_mount):
    """Handles the kernel never released (the daemon was told to stop while
    a directory and files were open) are freed at exit: ASan and valgrind
    see no leak."""
    m = make_mount(api)
    dfd = os.open(m.path, os.O_RDONLY | os.O_DIRECTORY)
    ffd = os.open(m.p("balance"), os.O_RDONLY)
    cfg = os.open(m.p("config"), os.O_RDWR)
    assert os.read(ffd, 100) == b"100\n"
    m.proc.terminate()
    m.proc.wait(30)
    for fd in (dfd, ffd, cfg):
        try:
            os.close(fd)
        except OSError:
            pass
    out = m.output()
    assert "definitely lost" not in out, out[-4000:]
    assert "LeakSanitizer" not in out, out[-4000:]


def test_every_file_size_matches_read(mnt):
    """st_size is the true size of what a read returns, for every file."""
    checked = 0
    for top in ("availability", "pods", "history"):
        for dirpath, dirnames, filenames in os.walk(mnt.p(top)):
            for name in filenames:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    data = f.read()
                if name in STREAMS:  # sized 0, like /proc files
                    assert os.stat(path).st_size == 0, path
                    continue
                assert os.stat(path).st_size == len(data), path
                assert data.endswith(b"\n"), path
                checked += 1
    assert checked > 1000


def test_offer_dirs(mnt, api):
    types = os.listdir(mnt.p("availability"))
    assert "H100_80GB" in types and "A100_80GB" in types
    assert "RTX_3090_24GB" in types  # "RTX 3090_24GB" sanitized
    names = []
    for t in types:
        assert SAFE.match(t) and not t.startswith(".")
        for o in os.listdir(mnt.p("availability", t)):
            assert SAFE.match(o) and not o.startswith("."), o
            if o != "cheapest":
                names.append((t, o))
                assert set(os.listdir(mnt.p("availability", t, o))) == OFFER_FILES
    # Every offer of both endpoints appears once (minus none: all have a type).
    assert len(names) == len(all_offers(api))
    assert len(set(names)) == len(names)
    # The recorded first offer, by DESIGN's naming rule.
    o = mnt.p("availability", "A100_80GB", "runpod-US-KS-2-PCIe-1x")
    assert mnt.read(o, "price") == "1.6567999999999998\n"
    assert mnt.read(o, "stock") == "Low\n"
    assert mnt.read(o, "provider") == "runpod\n"
    assert mnt.read(o, "data_center") == "US-KS-2\n"
    assert mnt.read(o, "country") == "US\n"
    assert mnt.read(o, "socket") == "PCIe\n"
    assert mnt.read(o, "gpu_count") == "1\n"
    assert mnt.read(o, "gpu_memory") == "80\n"
    assert mnt.read(o, "vcpus") == "14\n"
    assert mnt.read(o, "memory") == "125\n"
    assert mnt.read(o, "disk") == "120\n"
    assert mnt.read(o, "spot") == "\n"
    assert mnt.read(o, "cloud_id") == "NVIDIA A100 80GB PCIe\n"
    assert mnt.read(o, "security") == "secure_cloud\n"
    assert mnt.read(o, "images").splitlines()[0] == "ubuntu_22_cuda_12"
    assert json.loads(mnt.read(o, "json"))["cloudId"] == "NVIDIA A100 80GB PCIe"


def test_offer_json_is_the_api_object(mnt, api):
    by_json = {json.dumps(o, sort_keys=True) for o in all_offers(api)}
    for t in os.listdir(mnt.p("availability")):
        for o in os.listdir(mnt.p("availability", t)):
            if o != "cheapest":
                got = json.loads(mnt.read("availability", t, o, "json"))
                assert json.dumps(got, sort_keys=True) in by_json


def test_nasty_offers(mnt):
    everything = []
    for t in os.listdir(mnt.p("availability")):
        everything += os.listdir(mnt.p("availability", t))
    assert any(n.startswith("evil_provider_x-") for n in everything)
    assert not any(n in (".", "..") or "/" in n for n in everything)
    # The offer with no price is listed, with an empty price.
    empty = [t + "/" + o for t in os.listdir(mnt.p("availability"))
             for o in os.listdir(mnt.p("availability", t))
             if o != "cheapest" and mnt.read("availability", t, o, "price") == "\n"]
    assert empty


def test_pods_listed_once_and_by_id(mnt, api):
    pods = all_pages(api, "/pods")
    ids = {p["id"] for p in pods}
    pods_by_id = {p["id"]: p for p in pods}
    listing = os.listdir(mnt.p("pods"))
    assert len(listing) == len(ids) == len(set(listing))
    seen = set()
    for d in listing:
        assert SAFE.match(d) and d not in (".", "..")
        pid = mnt.read("pods", d, "id").strip()
        # a pod of several nodes (ssh lists one per node) also has nodes/
        multi = isinstance(pods_by_id[pid]["sshConnection"], list) and \
            len(pods_by_id[pid]["sshConnection"]) > 1
        assert set(os.listdir(mnt.p("pods", d))) == \
            POD_FILES | POD_DIRS | POD_LINKS | ({"nodes"} if multi else set())
        seen.add(pid)
        assert mnt.read("pods", pid, "id").strip() == pid
    assert seen == ids


def test_pod_names(mnt, api):
    pods = {p["id"]: p for p in all_pages(api, "/pods")}
    listing = set(os.listdir(mnt.p("pods")))
    names = [p["name"] for p in pods.values()]
    for pid, p in pods.items():
        name = p["name"]
        by_name = (isinstance(name, str) and SAFE.match(name) and name not in (".", "..")
                   and names.count(name) == 1 and name not in pods)
        assert (name if by_name else pid) in listing, (pid, name)
    assert "demo" in listing
    assert "dup" not in listing
    for pid in ("cm9zq1x2a0010l508abcdefgh",   # "my pod"
                "cm9zq1x2a0011l508abcdefgh",   # "a/b"
                "cm9zq1x2a0012l508abcdefgh",   # ".."
                "cm9zq1x2a0013l508abcdefgh",   # null name
                "cm9zq1x2a0014l508abcdefgh",   # named like another pod's id
                "cm9zq1x2a0008l508abcdefgh",   # "dup"
                "cm9zq1x2a0009l508abcdefgh"):  # "dup"
        assert pid in listing
    # Where a name equals another pod's id, the id wins.
    assert mnt.read("pods/cm9zq1x2a0004l508abcdefgh/status") == "STOPPED\n"


def test_pod_files(mnt):
    d = "pods/a100-1"
    assert mnt.read(d, "id") == "cm9zq1x2a0001l508abcdefgh\n"
    assert mnt.read(d, "gpu_type") == "A100_80GB\n"
    assert mnt.read(d, "provider") == "runpod\n"
    assert mnt.read(d, "price") == "1.6568\n"
    assert mnt.read(d, "image") == "ubuntu_22_cuda_12\n"
    assert mnt.read("pods/h100-16/ssh") == "root@198.51.100.21 -p 22\nroot@198.51.100.22 -p 22\n"
    assert mnt.read("pods/h100-16/ip") == "198.51.100.21\n198.51.100.22\n"
    assert mnt.read("pods/a40-1/ssh") == "\n"  # [null]
    assert mnt.read("pods/a40-1/status") == "STOPPED\n"
    assert mnt.read("pods/installing-1/status") == "INSTALLING\n"
    assert mnt.read("pods/installing-1/progress") == "40\n"
    assert mnt.read("pods/pending-1/status") == "PENDING\n"
    assert mnt.read("pods/error-1/status") == "ERROR\n"
    for d in os.listdir(mnt.p("pods")):
        for f in HISTORY_FILES - {"json", "ssh", "ip", "log"}:
            assert "null" not in mnt.read("pods", d, f)


def test_cost_arithmetic(mnt):
    for d in os.listdir(mnt.p("pods")):
        price = mnt.read("pods", d, "price").strip()
        created = mnt.read("pods", d, "created").strip()
        before = time.time()
        cost = mnt.read("pods", d, "cost").strip()
        after = time.time()
        if not price or not created:
            continue
        assert re.match(r"^\d+\.\d{4}$", cost), cost
        # price x hours since created, as of a whole second while it was read
        t = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        lo = float(price) * max(0.0, math.floor(before) - t) / 3600
        hi = float(price) * max(0.0, math.ceil(after) - t) / 3600
        assert lo - 0.0001 <= float(cost) <= hi + 0.0001, (d, cost, lo, hi)


def test_history(mnt, api):
    hist = [h for h in all_pages(api, "/pods/history") if h["type"] in ("Instance", "Cluster")]
    disks = [h for h in all_pages(api, "/pods/history") if h["type"] == "Disk"]
    assert len(os.listdir(mnt.p("history"))) == len(hist) + len(disks)
    for h in hist:
        assert set(os.listdir(mnt.p("history", h["id"]))) == HISTORY_FILES | HIST_DIRS
        assert mnt.read("history", h["id"], "cost") == "%.4f\n" % h["totalBilledPrice"]
        assert mnt.read("history", h["id"], "status") == "TERMINATED\n"
        assert json.loads(mnt.read("history", h["id"], "json")) == h


def test_pod_json_is_the_api_object(mnt, api):
    pods = {p["id"]: p for p in all_pages(api, "/pods")}
    for d in os.listdir(mnt.p("pods")):
        got = json.loads(mnt.read("pods", d, "json"))
        assert got["id"] in pods


def test_full_crawl_costs_one_listing(mnt, api):
    """ls -lR and cat of every file: API calls grow with pages, not files."""
    api.reset()
    mnt.write("ctl", "refresh\n")
    files = 0
    for dirpath, dirnames, filenames in os.walk(mnt.path):
        for name in filenames:
            if name != "ctl":
                with open(os.path.join(dirpath, name), "rb") as f:
                    f.read()
                files += 1
    c = api.counts()
    offers = len(all_offers(api))
    api.reset()
    assert files > 1000
    assert c["GET /availability/gpus"] == (offers - 6 + 99) // 100
    assert c["GET /availability/multi-node"] == 1
    assert c["GET /pods"] == 1
    assert c["GET /pods/history"] == 1
    assert c["GET /billing/wallet"] == 1
    assert c["GET /pods/{id}"] == 0


def test_stats_match_server_counts(mnt, api):
    os.listdir(mnt.p("pods"))
    os.listdir(mnt.p("availability"))
    s = mnt.stats()
    c = api.counts()
    assert s["GET /pods"] == c["GET /pods"]
    assert s["GET /availability/gpus"] == c["GET /availability/gpus"]
    assert s["api_calls"] == sum(c.values())
    before = s["cache_hits"]
    mnt.read("pods/demo/status")
    assert mnt.stats()["cache_hits"] > before


def test_refresh_refetches(mnt, api):
    os.listdir(mnt.p("pods"))
    n = api.counts()["GET /pods"]
    os.listdir(mnt.p("pods"))
    assert api.counts()["GET /pods"] == n  # fresh: from the cache
    mnt.write("ctl", "refresh\n")
    os.listdir(mnt.p("pods"))
    assert api.counts()["GET /pods"] == n + 1
    assert "refresh" in mnt.log()
    with pytest.raises(OSError) as e:
        mnt.write("ctl", "explode\n")
    assert e.value.errno == errno.EINVAL
    assert "unknown command" in mnt.log()


def test_probes_and_statfs_cost_nothing(mnt, api):
    mnt.write("ctl", "refresh\n")
    api.reset()
    for probe in (".git", "HEAD", ".DS_Store", "._foo", "autorun.inf", ".hidden"):
        for d in ("pods", "availability", "history", ""):
            assert not os.path.exists(mnt.p(d, probe))
    os.statvfs(mnt.path)
    assert sum(api.counts().values()) == 0


PROBES = (".git", "HEAD", ".DS_Store", "._x", "autorun.inf", "desktop.ini")


def test_probes_past_the_ttl_cost_nothing(api, make_mount):
    """A prompt or file manager standing in any directory probes names
    there: answered from what is held, however old, in every directory."""
    m = make_mount(api, options=("pods_ttl=0.3", "offers_ttl=0.3"))
    gpu = sorted(os.listdir(m.p("availability")))[0]
    offer = sorted(o for o in os.listdir(m.p("availability", gpu))
                   if not os.path.islink(m.p("availability", gpu, o)))[0]
    hist = sorted(os.listdir(m.p("history")))[0]
    dirs = ["", "availability", f"availability/{gpu}",
            f"availability/{gpu}/{offer}", "pods", "pods/demo", "history",
            f"history/{hist}"]
    # Held open as a shell's working directory is: lookups start there.
    fds = [os.open(m.p(d), os.O_RDONLY | os.O_DIRECTORY) for d in dirs]
    try:
        time.sleep(0.6)  # past both freshness windows
        before = api.counts()
        for fd in fds:
            for probe in PROBES:
                with pytest.raises(FileNotFoundError):
                    os.stat(probe, dir_fd=fd)
        time.sleep(0.5)  # a fetch started behind a probe would show now
        assert api.counts() == before
    finally:
        for fd in fds:
            os.close(fd)


def test_pods_paging(make_api, make_mount):
    api = make_api("--pods", "230")
    m = make_mount(api)
    listing = os.listdir(m.p("pods"))
    assert len([d for d in listing if d.startswith("gen-")]) == 230
    assert api.counts()["GET /pods"] == 3


def test_read_only(mnt):
    with pytest.raises(PermissionError):
        mnt.write("pods/demo/status", "x")
    with pytest.raises(PermissionError):
        mnt.write("balance", "1000000")
    with pytest.raises(OSError) as e:
        os.unlink(mnt.p("pods/demo/status"))
    assert e.value.errno == errno.EPERM
    with pytest.raises(PermissionError):
        open(mnt.p("pods/demo/newfile"), "w")
    with pytest.raises(OSError) as e:
        open(mnt.p("ctl")).read()
    assert e.value.errno == errno.EACCES


def test_concurrent_misses_share_one_request(mnt, api):
    os.listdir(mnt.p("pods"))
    mnt.write("ctl", "refresh\n")
    api.fault(kind="slow", delay=0.5, match="GET /pods")
    api.reset()
    errors = []

    def reader(i):
        try:
            mnt.read("pods", "demo" if i % 2 else "a100-1", "status")
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert api.counts()["GET /pods"] == 1


# ---- money exact: states, prices, cost, lists with nulls ----

def _iso(ts):
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _add_pod(api, **fields):
    return api.admin("pods", {"add": [fields]})["added"][0]


def test_offer_prepaid_file(mnt, api):
    offers = [o for o in all_offers(api) if o.get("prepaidTime") is None]
    assert offers
    for t in os.listdir(mnt.p("availability")):
        for o in os.listdir(mnt.p("availability", t)):
            if os.path.islink(mnt.p("availability", t, o)):
                continue
            pre = mnt.read("availability", t, o, "prepaid")
            js = json.loads(mnt.read("availability", t, o, "json"))
            want = "" if js.get("prepaidTime") is None else str(js["prepaidTime"])
            assert pre == want + "\n"


def test_price_and_cost_per_state(api, make_mount):
    now = time.time()
    created = _iso(now - 10 * 3600)
    _add_pod(api, name="stopped-x", status="STOPPED", priceHr=2.5, stoppedPriceHr=0.05,
             provisioningPriceHr=0.0, createdAt=created)
    _add_pod(api, name="prov-x", status="PROVISIONING", priceHr=2.5, stoppedPriceHr=0.05,
             provisioningPriceHr=0.0, createdAt=created)
    _add_pod(api, name="pendnull-x", status="PENDING", priceHr=2.5, stoppedPriceHr=None,
             provisioningPriceHr=None, createdAt=created)
    _add_pod(api, name="err-x", status="ERROR", priceHr=2.5, createdAt=created)
    _add_pod(api, name="unk-x", status="UNKNOWN", priceHr=2.5, createdAt=created)
    billed = _add_pod(api, name="billed-x", status="ACTIVE", priceHr=2.0,
                      createdAt=_iso(now - 5 * 3600))
    # Billed up to one hour ago: 3.0 + 1.5; the running part is 1 h at 2.0.
    row = {"created_at": _iso(now - 7200), "updated_at": _iso(now - 3600),
           "currency": "USD", "resource_type": "compute", "resource_id": billed}
    api.admin("wallet", {"recent_billings": [
        dict(row, id="b2", created_at=_iso(now - 3600), last_billed_at=_iso(now - 3600),
             amount_usd=1.5),
        dict(row, id="b1", last_billed_at=_iso(now - 7200), amount_usd=3.0),
        dict(row, id="b0", resource_id="someone-else", last_billed_at=None, amount_usd=99.0),
    ]})
    m = make_mount(api)
    assert m.read("pods/stopped-x/price") == "0.05\n"
    assert abs(float(m.read("pods/stopped-x/cost")) - 0.5) < 0.01   # not 25
    assert m.read("pods/prov-x/price") == "0\n"
    assert m.read("pods/prov-x/cost") == "0.0000\n"
    assert m.read("pods/pendnull-x/price") == "2.5\n"
    assert m.read("pods/err-x/price") == "0\n"
    assert m.read("pods/err-x/cost") == "0.0000\n"
    assert m.read("pods/unk-x/status") == "UNKNOWN\n"
    assert m.read("pods/unk-x/price") == "2.5\n"
    assert abs(float(m.read("pods/billed-x/cost")) - 6.5) < 0.01
    assert re.match(r"^\d+\.\d{4}\n$", m.read("pods/billed-x/cost"))


def test_cost_pages_billing_back_to_the_oldest_pod(api, make_mount):
    """DESIGN: cost sums the pod's rows of recent_billings, paged back (newest
    first, 100 a page) no further than the oldest listed pod's creation."""
    now = time.time()
    old = _add_pod(api, name="old-x", status="STOPPED", priceHr=2.0, stoppedPriceHr=0.0,
                   createdAt=_iso(now - 30 * 86400))
    row = {"updated_at": _iso(now), "currency": "USD", "resource_type": "compute"}
    # 150 newer rows of other resources, then the old pod's bill of 7.25,
    # then rows older than every pod: the page that reaches them is the last.
    rows = [dict(row, id="n%d" % i, created_at=_iso(now - 3600 - i),
                 last_billed_at=_iso(now - 3600 - i), resource_id="other-%d" % i,
                 amount_usd=0.01) for i in range(150)]
    rows.append(dict(row, id="o1", created_at=_iso(now - 29 * 86400),
                     last_billed_at=_iso(now - 20 * 86400), resource_id=old, amount_usd=7.25))
    rows += [dict(row, id="z%d" % i, created_at=_iso(now - 900 * 86400),
                  last_billed_at=_iso(now - 900 * 86400), resource_id="ancient",
                  amount_usd=1.0) for i in range(120)]
    api.admin("wallet", {"recent_billings": rows})
    m = make_mount(api)
    os.listdir(m.p("pods"))
    api.reset()
    assert m.read("pods/old-x/cost") == "7.2500\n"  # STOPPED at 0 since the bill
    walls = [r for r in api.requests() if r["path"].endswith("/billing/wallet")]
    assert [r["query"].get("offset") for r in walls] == [["0"], ["100"]], walls


def test_install_failed_and_gone_pods(api, make_mount):
    _add_pod(api, name="broken", status="ACTIVE", installationStatus="ERROR",
             installationFailure="Failed to pull image: manifest unknown for xyz-42",
             sshConnection=None)
    gone = _add_pod(api, name="going", status="DELETING")
    _add_pod(api, name="gone", status="TERMINATED")
    m = make_mount(api)
    assert m.read("pods/broken/status") == "INSTALL_FAILED\n"
    names = os.listdir(m.p("pods"))
    assert "going" not in names and "gone" not in names
    assert not os.path.exists(m.p("pods", "going"))
    assert not os.path.exists(m.p("pods", gone))
    for _ in range(3):
        m.read("pods/broken/status")
        with open(m.p("ctl"), "w") as f:
            f.write("refresh\n")
    assert m.log().count("manifest unknown for xyz-42") == 1
    # A pod that will never be ready: a job fails at once, nothing waits.
    t = time.monotonic()
    r = subprocess.run(["bash", "-c", "echo true > pods/broken/run"], cwd=m.path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "not connected" in r.stderr, r.stderr
    assert time.monotonic() - t < 30  # not the 300 s ready_timeout
    assert "INSTALL_FAILED, not running: nothing was sent" in m.log()


def test_lists_keep_node_positions(api, make_mount):
    _add_pod(api, name="multi", status="ACTIVE", installationStatus="FINISHED",
             sshConnection=["root@198.51.100.31 -p 22", None, "root@198.51.100.33 -p 22"],
             ip=[None, "198.51.100.32", "198.51.100.33"])
    m = make_mount(api)
    assert m.read("pods/multi/ssh") == "root@198.51.100.31 -p 22\n\nroot@198.51.100.33 -p 22\n"
    assert m.read("pods/multi/ip") == "\n198.51.100.32\n198.51.100.33\n"

# ---- names from the offer's own fields; cheapest/ at the root ----

HEX_SUFFIX = re.compile(r"-[0-9a-f]{6}(?:[0-9a-f]{10})?$")
# A twin's hash, then the last resort for offers alike in all but price
# and stock (the fake's true duplicate).
TWIN_SUFFIX = re.compile(r"(-[0-9a-f]{6}(?:[0-9a-f]{10})?)?(-[0-9]+)?$")


def offer_listing(mnt):
    return {(t, o) for t in os.listdir(mnt.p("availability"))
            for o in os.listdir(mnt.p("availability", t))}


def rentable_prices(mnt):
    """{type: {offer: price}} of what DESIGN.md lets cheapest/ point at: in
    stock (not Unavailable), priced, not spot, no prepaid time."""
    out = {}
    for t, o in offer_listing(mnt):
        d = mnt.p("availability", t, o)
        price = mnt.read(d, "price").strip()
        stock = mnt.read(d, "stock").strip()
        js = json.loads(mnt.read(d, "json"))
        if (price and stock and stock != "Unavailable" and mnt.read(d, "spot") != "true\n"
                and not js.get("prepaidTime")):
            out.setdefault(t, {})[o] = float(price)
    return out


def test_cheapest_dir_links_each_type(mnt):
    rentable = rentable_prices(mnt)
    assert rentable
    assert set(os.listdir(mnt.p("cheapest"))) == set(rentable)
    for t, priced in rentable.items():
        link = mnt.p("cheapest", t)
        assert os.path.islink(link)
        target = os.readlink(link)
        assert target.startswith(f"../availability/{t}/"), target
        o = target.split("/")[-1]
        assert priced[o] == min(priced.values()), t
        # The kernel follows it to the offer's directory.
        assert os.path.realpath(link) == os.path.realpath(mnt.p("availability", t, o))
        assert mnt.read("cheapest", t, "price") == mnt.read("availability", t, o, "price")
        assert set(os.listdir(link)) == set(os.listdir(mnt.p("availability", t, o)))
    # A type with no rentable offer (or none at all) has no link.
    for t in set(os.listdir(mnt.p("availability"))) - set(rentable):
        assert not os.path.lexists(mnt.p("cheapest", t))
    assert not os.path.lexists(mnt.p("cheapest", "NOPE_80GB"))


def test_type_dirs_hold_offers_only(mnt, api):
    for t in os.listdir(mnt.p("availability")):
        assert "cheapest" not in os.listdir(mnt.p("availability", t))
        assert not os.path.lexists(mnt.p("availability", t, "cheapest"))
    # Each offer counted once by a glob.
    r = subprocess.run("cat availability/*/*/price | wc -l", shell=True, cwd=mnt.path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == len(all_offers(api))


def test_offer_names_from_own_fields(mnt):
    """Security and spot are in every name that has them; a suffix is a
    hash (never a counter), and only twins have one."""
    for t, o in offer_listing(mnt):
        d = mnt.p("availability", t, o)
        security = mnt.read(d, "security").strip()
        spot = mnt.read(d, "spot").strip() == "true"
        base = TWIN_SUFFIX.sub("", o)
        assert base.endswith("-community-spot" if security == "community_cloud" and spot
                             else "-community" if security == "community_cloud"
                             else "-spot" if spot else ""), o
        assert not base.endswith("-secure"), o
        assert len(o) <= 255 and SAFE.match(o) and not o.startswith(".")


def test_names_stable_when_stock_or_siblings_change(mnt, api):
    """A name depends on its offer alone: an offer going out of stock, and
    another offer going away, rename nothing else."""
    before = offer_listing(mnt)
    link_before = {t: os.readlink(mnt.p("cheapest", t)) for t in os.listdir(mnt.p("cheapest"))}
    t = "H100_80GB"
    target = link_before[t].split("/")[-1]
    js = json.loads(mnt.read("availability", t, target, "json"))
    # The cheapest H100 goes out of stock; another offer, not a twin, goes.
    gone = next((tt, o) for tt, o in sorted(before)
                if tt != t and not HEX_SUFFIX.search(o) and not re.search(r"-[0-9]+$", o))
    gone_js = json.loads(mnt.read("availability", *gone, "json"))
    assert api.admin("offers", {"set_stock": {"match": js, "stockStatus": "Unavailable"}})[
        "stock_set"] >= 1
    assert api.admin("offers", {"remove": gone_js})["removed"] == 1
    with open(mnt.p("ctl"), "w") as f:
        f.write("refresh\n")
    after = offer_listing(mnt)
    assert after == before - {gone}
    assert mnt.read("availability", t, target, "stock") == "Unavailable\n"
    # cheapest/ moved off it, to the next rentable H100.
    rentable = rentable_prices(mnt)
    if t in rentable:
        now = os.readlink(mnt.p("cheapest", t)).split("/")[-1]
        assert now != target
        assert rentable[t][now] == min(rentable[t].values())
    else:
        assert not os.path.lexists(mnt.p("cheapest", t))


# ---- pods/<pod>/log, pods/<pod>/offer, chmod ----

LOG_LINES = "{0} log line 1\n{0} log line 2\n{0} log line 3\n"


def test_pod_log_shapes(mnt, api):
    """The answer's shape is undocumented: a string as it is (a100-1), a
    list one item per line (h100-16), an object by its list (demo)."""
    api.reset()
    for pod in ("a100-1", "h100-16", "demo"):
        path = mnt.p("pods", pod, "log")
        st = os.stat(path)
        assert st.st_size == 0  # a stream, like /proc files
        assert stat.S_IMODE(st.st_mode) == 0o400  # the owner's alone
        assert mnt.read("pods", pod, "log") == LOG_LINES.format(pod)
    c = api.counts()
    assert c["GET /pods/{id}/log"] == 3  # fetched when opened, not at stat
    # Kept for the pods' freshness window: reading again costs nothing.
    mnt.read("pods/demo/log")
    assert api.counts()["GET /pods/{id}/log"] == 3
    assert mnt.stats()["GET /pods/{id}/log"] == 3
    mnt.write("ctl", "refresh\n")  # marks the logs stale too
    assert mnt.read("pods/demo/log") == LOG_LINES.format("demo")
    assert api.counts()["GET /pods/{id}/log"] == 4
    tails = [r["query"].get("tail") for r in api.requests() if r["path"].endswith("/log")]
    assert all(t and int(t[0]) > 0 for t in tails), tails


def test_pod_log_is_rate_limited(api, make_mount):
    """pods_ttl=0 would fetch at every open: a burst, then the last text."""
    m = make_mount(api, ["pods_ttl=0"])
    api.reset()
    for _ in range(40):
        assert m.read("pods/a100-1/log") == LOG_LINES.format("a100-1")
    n = api.counts()["GET /pods/{id}/log"]
    assert 10 <= n <= 20, n
    # A crawl over every pod's log stays bounded too.
    for d in os.listdir(m.p("pods")):
        m.read("pods", d, "log")
    n2 = api.counts()["GET /pods/{id}/log"]
    assert n2 <= 25, n2
    assert m.stats()["GET /pods/{id}/log"] == n2
    assert "rate-limited" in m.log()


def offers_by_dir(mnt):
    out = {}
    for t in os.listdir(mnt.p("availability")):
        for o in os.listdir(mnt.p("availability", t)):
            if o != "cheapest":
                out[t + "/" + o] = json.loads(mnt.read("availability", t, o, "json"))
    return out


def test_pod_offer(mnt, api):
    offers = offers_by_dir(mnt)

    def key(o):
        return (o["gpuType"], o["gpuCount"], o.get("provider"), o.get("socket"))

    groups = {}
    for d, o in offers.items():
        groups.setdefault(key(o), []).append(d)
    single = next(ds[0] for k, ds in sorted(groups.items(), key=str) if len(ds) == 1)
    so = offers[single]
    # Twins but for the data center, which the pod names.
    multi = next(ds for k, ds in sorted(groups.items(), key=str)
                 if len(ds) > 1 and len({offers[d].get("dataCenter") for d in ds}) == len(ds)
                 and all(offers[d].get("dataCenter") for d in ds))
    mo = offers[multi[1]]

    def pod(o, **extra):
        fields = dict(gpuName=o["gpuType"], gpuCount=o["gpuCount"], providerType=o.get("provider"),
                      socket=o.get("socket"), isSpot=o.get("isSpot"))
        fields.update(extra)
        return fields

    added = api.admin("pods", {"add": [
        dict(pod(so), name="from-single"),
        dict(pod(mo, dataCenterId=mo["dataCenter"]), name="from-dc"),
        dict(pod(mo), name="ambiguous"),
        dict(pod(so, gpuCount=so["gpuCount"] + 1000), name="from-nothing"),
    ]})["added"]
    assert len(added) == 4
    mnt.write("ctl", "refresh\n")
    os.listdir(mnt.p("availability"))  # the offers listing is held
    api.reset()
    assert mnt.read("pods/from-single/offer") == single + "\n"
    assert mnt.read("pods/from-dc/offer") == multi[1] + "\n"
    assert mnt.read("pods/ambiguous/offer") == "\n"
    assert mnt.read("pods/from-nothing/offer") == "\n"
    # Every pod's offer file from the held listing: no offers fetch at all.
    for d in os.listdir(mnt.p("pods")):
        assert mnt.read("pods", d, "offer").count("\n") == 1
        assert os.stat(mnt.p("pods", d, "offer")).st_size == len(mnt.read("pods", d, "offer"))
    assert api.counts()["GET /availability/gpus"] == 0


def test_offer_crawl_costs_one_offers_listing(mnt, api):
    mnt.write("ctl", "refresh\n")
    api.reset()
    for d in os.listdir(mnt.p("pods")):
        mnt.read("pods", d, "offer")
    for d in os.listdir(mnt.p("history")):
        if os.path.exists(mnt.p("history", d, "offer")):   # deleted disks have none
            mnt.read("history", d, "offer")
    pages = api.counts()["GET /availability/gpus"]
    assert pages == (len(all_offers(api)) - 6 + 99) // 100


def test_chmod_is_eperm_unless_it_changes_nothing(mnt):
    """No mode can change: a chmod to another one is EPERM (a pod directory
    by its owner too: it used to answer 0 and change nothing); to the mode
    the object has (cp -p), 0."""
    os.chmod(mnt.p("pods/demo/status"), 0o444)  # the mode it has
    os.chmod(mnt.p("availability"), 0o755)
    os.chmod(mnt.p("pods/demo"), 0o755)
    for path, mode in (("pods/demo/status", 0o666), ("balance", 0o777),
                       ("availability", 0o700), ("config", 0o644),
                       ("pods/demo", 0o700), ("pods/demo", 0o777)):
        before = os.stat(mnt.p(path)).st_mode
        assert err_of(lambda: os.chmod(mnt.p(path), mode)) == errno.EPERM, path
        assert os.stat(mnt.p(path)).st_mode == before, path
    r = subprocess.run(["chmod", "700", mnt.p("pods/demo")], capture_output=True, text=True)
    assert r.returncode == 1 and "Operation not permitted" in r.stderr, r
    assert stat.S_IMODE(os.stat(mnt.p("pods/demo")).st_mode) == 0o755


def test_install_d_rents_once_and_exits_0(api, make_mount):
    """install -d pods/x rents and exits 0, whatever the umask (the mode it
    wants is the one the directory shows); -m of another mode rents and
    says the mode could not be set."""
    from test_intent import TEMPLATE, assert_rented_once, deletes, run
    m = make_mount(api)
    m.write("config", TEMPLATE)
    api.reset()
    r = run(["sh", "-c", "umask 077 && install -d pods/x"], m.path)
    assert r.returncode == 0 and not r.stderr, r
    assert_rented_once(api, m, "x")
    # With a mode other than the one the directory shows, install chmods
    # it after the mkdir: refused, and install says so.
    api.reset()
    r = run(["install", "-d", "-m", "700", "pods/y"], m.path)
    assert r.returncode == 1 and "cannot change permissions" in r.stderr, r
    assert_rented_once(api, m, "y")
    assert deletes(api) == []
