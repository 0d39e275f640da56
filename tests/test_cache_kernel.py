"""Kernel caching of entries and attributes: the kernel keeps what primefs
answered for the shortest freshness window, and is told at once when
primefs learns better (its own mkdir and rmdir, under both of a pod's
names; a listing that differs; refresh; config writes). Counts of FUSE
requests in `stats` show what reached the daemon."""

import errno
import json
import os
import time

from conftest import err_of, read_to_eof

LONG = ("pods_ttl=600", "offers_ttl=600")
TEMPLATE = "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"


def counters(m):
    """The stats file read with open and read only: no stat of it, so that
    reading it adds no getattr of its own once its entry is cached."""
    fd = os.open(m.p("stats"), os.O_RDONLY)
    try:
        data = read_to_eof(fd, 65536)
    finally:
        os.close(fd)
    out = {}
    for line in data.decode().splitlines():
        key, _, value = line.rpartition(" ")
        out[key] = int(value)
    return out


def a_pod(m):
    name = sorted(os.listdir(m.p("pods")))[0]
    return name, m.read("pods", name, "id").strip()


def test_a_second_stat_does_not_reach_the_daemon(api, make_mount):
    m = make_mount(api, options=LONG)
    t = "H100_80GB"
    offer = sorted(os.listdir(m.p("availability", t)))[0]
    price = m.p("availability", t, offer, "price")
    first = os.stat(price)
    counters(m)  # the stats file's own entry, cached from here on
    before = counters(m)
    for _ in range(5):
        st = os.stat(price)
        assert st.st_size == first.st_size
    after = counters(m)
    assert after["fuse_getattr"] == before["fuse_getattr"]
    assert after["fuse_lookup"] == before["fuse_lookup"]
    assert after["fuse_open"] == before["fuse_open"] + 1  # the stats file
    # What a read returns is what stat says.
    assert len(m.read("availability", t, offer, "price")) == first.st_size


def test_readdirplus_gives_attributes_with_names(api, make_mount):
    m = make_mount(api, options=LONG)
    t = "H100_80GB"
    counters(m)
    before = counters(m)
    names = os.listdir(m.p("availability", t))
    mid = counters(m)
    for n in names:
        assert os.path.isdir(m.p("availability", t, n))
    after = counters(m)
    assert names and after["fuse_readdir"] > before["fuse_readdir"]
    # Each offer's attributes came with the listing: no lookup each.
    asked = lambda c: c["fuse_getattr"] + c["fuse_lookup"]
    assert asked(after) - asked(mid) < len(names)


def test_inodes_follow_what_the_kernel_holds(api, make_mount):
    """Every entry a listing hands the kernel is an inode primefs holds
    until the kernel forgets it: when the kernel drops its dentries, the
    count in stats goes down."""
    m = make_mount(api, options=LONG)
    t = "H100_80GB"
    start = counters(m)["fuse_inodes"]
    offers = os.listdir(m.p("availability", t))
    for o in offers:  # each offer's files, with their attributes
        os.listdir(m.p("availability", t, o))
        os.stat(m.p("availability", t, o, "price"))
    held = counters(m)["fuse_inodes"]
    assert held > start + len(offers)
    deadline = time.time() + 10
    now = held
    while time.time() < deadline:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2\n")
        now = counters(m)["fuse_inodes"]
        if now < held - len(offers):
            break
        time.sleep(0.1)
    assert now < held - len(offers), (start, held, now)
    assert counters(m)["fuse_forget"] > 0
    # What was forgotten is found again, with the same content.
    assert sorted(os.listdir(m.p("availability", t))) == sorted(offers)
    assert m.read("availability", t, offers[0], "price")


def test_rmdir_by_id_then_the_name_is_gone_at_once(api, make_mount):
    m = make_mount(api, options=LONG)
    name, pid = a_pod(m)
    assert name != pid
    # Both names, and files under both, in the kernel's caches.
    for base in (name, pid):
        os.stat(m.p("pods", base))
        os.stat(m.p("pods", base, "status"))
    os.rmdir(m.p("pods", pid))
    for base in (name, pid):
        assert err_of(lambda: os.stat(m.p("pods", base))) == errno.ENOENT
        assert err_of(lambda: os.stat(m.p("pods", base, "status"))) == errno.ENOENT
        assert err_of(lambda: os.listdir(m.p("pods", base))) == errno.ENOENT
    assert name not in os.listdir(m.p("pods"))


def test_rmdir_by_name_then_the_id_is_gone_at_once(api, make_mount):
    m = make_mount(api, options=LONG)
    name, pid = a_pod(m)
    os.stat(m.p("pods", pid, "status"))
    os.rmdir(m.p("pods", name))
    assert err_of(lambda: os.stat(m.p("pods", pid))) == errno.ENOENT
    assert err_of(lambda: os.stat(m.p("pods", pid, "status"))) == errno.ENOENT


def test_mkdir_shows_at_once(api, make_mount):
    m = make_mount(api, options=LONG)
    m.write("config", TEMPLATE)
    assert err_of(lambda: os.stat(m.p("pods", "fresh"))) == errno.ENOENT
    os.mkdir(m.p("pods", "fresh"))
    assert "fresh" in os.listdir(m.p("pods"))
    assert os.path.isdir(m.p("pods", "fresh"))
    status = m.read("pods", "fresh", "status")
    assert os.stat(m.p("pods", "fresh", "status")).st_size == len(status)
    pid = m.read("pods", "fresh", "id").strip()
    os.stat(m.p("pods", pid, "status"))
    os.rmdir(m.p("pods", "fresh"))
    assert err_of(lambda: os.stat(m.p("pods", pid, "status"))) == errno.ENOENT
    assert "fresh" not in os.listdir(m.p("pods"))


def test_a_listing_that_differs_is_shown_at_once(api, make_mount):
    # The kernel keeps answers for 3 s (the pods' window); an entry cached
    # late in one listing's window must not outlive the next listing.
    m = make_mount(api, options=("pods_ttl=3", "offers_ttl=600"))
    name, pid = a_pod(m)
    gone_name = sorted(os.listdir(m.p("pods")))[1]
    t0 = time.monotonic()
    time.sleep(1.5)
    old_status = m.read("pods", name, "status")
    assert os.stat(m.p("pods", name, "status")).st_size == len(old_status)
    os.stat(m.p("pods", pid, "status"))
    os.stat(m.p("pods", gone_name, "status"))
    new_status = "PROVISIONING" if old_status != "PROVISIONING\n" else "ACTIVE"
    gone_id = m.read("pods", gone_name, "id").strip()
    api.admin("pods", {"set": {"id": pid, "status": new_status},
                       "add": [{"name": "arrived", "status": "ACTIVE"}],
                       "delete": [gone_id]})
    time.sleep(max(0.0, t0 + 3.3 - time.monotonic()))
    listing = os.listdir(m.p("pods"))  # past the window: a new listing
    assert "arrived" in listing and gone_name not in listing
    for base in (name, pid):
        assert os.stat(m.p("pods", base, "status")).st_size == len(new_status) + 1
        assert m.read("pods", base, "status") == new_status + "\n"
    assert err_of(lambda: os.stat(m.p("pods", gone_name))) == errno.ENOENT
    assert err_of(lambda: os.stat(m.p("pods", gone_name, "status"))) == errno.ENOENT
    assert os.path.isdir(m.p("pods", "arrived"))


def test_refresh_shows_a_changed_listing(api, make_mount):
    m = make_mount(api, options=LONG)
    name, pid = a_pod(m)
    other = sorted(os.listdir(m.p("pods")))[1]
    other_id = m.read("pods", other, "id").strip()
    old = m.read("pods", name, "status")
    os.stat(m.p("pods", name, "status"))
    os.stat(m.p("pods", other, "status"))
    new_status = "PROVISIONING" if old != "PROVISIONING\n" else "ACTIVE"
    api.admin("pods", {"set": {"id": pid, "status": new_status},
                       "delete": [other_id]})
    # Nothing primefs knows yet: the window is long.
    assert os.stat(m.p("pods", name, "status")).st_size == len(old)
    m.write("ctl", "refresh\n")
    assert os.stat(m.p("pods", name, "status")).st_size == len(new_status) + 1
    assert m.read("pods", name, "status") == new_status + "\n"
    assert err_of(lambda: os.stat(m.p("pods", other, "status"))) == errno.ENOENT
    assert other not in os.listdir(m.p("pods"))


def test_config_write_then_size(api, make_mount):
    m = make_mount(api, options=LONG)
    for text in (TEMPLATE, "max_pods = 3\n", TEMPLATE + "# a longer one\n" * 3, ""):
        before = os.stat(m.p("config")).st_size  # cached
        m.write("config", text)
        if not text:
            # `: > config` is stored at release, which the kernel sends
            # after close() has returned: wait for it (a hang bound).
            deadline = time.time() + 10
            while m.read("config") and time.time() < deadline:
                time.sleep(0.02)
        assert m.read("config") == text
        assert os.stat(m.p("config")).st_size == len(text), before


def _offer_match(o):
    return {k: o.get(k) for k in ("cloudId", "gpuType", "socket", "provider", "dataCenter",
                                  "gpuCount", "security", "isSpot")}


def _cached_value_then_change(api, m):
    """An offer's stock read twice: the second read is served by the
    kernel's page cache (no READ reaches the daemon; the kernel still
    sends OPEN, which libfuse's high-level API cannot skip per file). Then
    the fake changes it; returns (path, the new value)."""
    t = "H100_80GB"
    offer = sorted(os.listdir(m.p("availability", t)))[0]
    path = m.p("availability", t, offer, "stock")
    with open(path) as f:
        first = f.read()
    c0 = counters(m)
    c1 = counters(m)
    per_counters = c1["fuse_read"] - c0["fuse_read"]  # reads of stats itself
    for _ in range(3):
        with open(path) as f:
            assert f.read() == first
    c2 = counters(m)
    assert c2["fuse_read"] - c1["fuse_read"] == per_counters
    assert os.stat(path).st_size == len(first)
    js = json.loads(m.read("availability", t, offer, "json"))
    new = "Low" if first != "Low\n" else "High"
    assert api.admin("offers", {"set_stock": {"match": _offer_match(js),
                                              "stockStatus": new}})["stock_set"]
    return path, new + "\n"


def test_a_cached_value_is_dropped_at_refresh(api, make_mount):
    m = make_mount(api, options=LONG)
    path, new = _cached_value_then_change(api, m)
    m.write("ctl", "refresh\n")
    with open(path) as f:
        assert f.read() == new
    assert os.stat(path).st_size == len(new)


def test_a_cached_value_is_dropped_after_the_ttl(api, make_mount):
    m = make_mount(api, options=("pods_ttl=600", "offers_ttl=2"))
    t0 = time.monotonic()
    path, new = _cached_value_then_change(api, m)
    time.sleep(max(0.0, t0 + 2.5 - time.monotonic()))
    with open(path) as f:
        assert f.read() == new
    assert os.stat(path).st_size == len(new)


def test_volatile_and_job_files_are_never_kept(api, make_mount):
    """cost grows by itself, log and stats with use: each read of them
    reaches the daemon."""
    m = make_mount(api, options=LONG)
    name, _ = a_pod(m)
    for rel in (("pods", name, "cost"), ("log",), ("config",)):
        path = m.p(*rel)
        with open(path) as f:
            f.read()
        c0 = counters(m)
        c1 = counters(m)
        per_counters = c1["fuse_read"] - c0["fuse_read"]
        with open(path) as f:
            f.read()
        c2 = counters(m)
        assert c2["fuse_read"] - c1["fuse_read"] > per_counters, rel
