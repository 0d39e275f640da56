"""history/ (DESIGN.md "The tree"): terminated pods only — the rows of
/pods/history of type Instance or Cluster — named as pods/ is (by name when
safe and unique there, else by id; both resolve), cached with a freshness
window of its own, and a pod this mount terminated shows there at once
after its rmdir until the history lists it."""

import errno
import os

from conftest import err_of

from test_tree import HISTORY_FILES, HIST_DIRS, all_pages

PODS = ("Instance", "Cluster")


def history_pods(api):
    return [h for h in all_pages(api, "/pods/history") if h["type"] in PODS]


def test_history_lists_pods_only_by_name_when_unique(mnt, api):
    rows = all_pages(api, "/pods/history")
    assert {r["type"] for r in rows} >= {"Instance", "Cluster", "Disk", "Sandbox"}
    pods = history_pods(api)
    shown = pods + [r for r in rows if r["type"] == "Disk"]   # deleted disks too
    names = [h["name"] for h in shown]
    want = {h["name"] if names.count(h["name"]) == 1 else h["id"] for h in shown}
    listing = os.listdir(mnt.p("history"))
    assert sorted(listing) == sorted(want)
    assert "a100-1" in listing and "cluster-16" in listing
    assert "h100-8" not in listing  # two history pods share it: by id
    for h in pods:
        # by id always, and by name where that is how it is listed
        assert mnt.read("history", h["id"], "id") == h["id"] + "\n"
        assert mnt.read("history", h["id"], "cost") == "%.4f\n" % h["totalBilledPrice"]
        assert mnt.read("history", h["id"], "status") == "TERMINATED\n"
        assert set(os.listdir(mnt.p("history", h["id"]))) == HISTORY_FILES | HIST_DIRS
    assert mnt.read("history/a100-1/name") == "a100-1\n"
    assert mnt.read("history/cluster-16/gpu_count") == "16\n"
    assert mnt.read("history/cluster-16/cost") == "80.1250\n"
    # Sandboxes and the like are no pods: neither listed nor resolved.
    # Deleted disks are listed beside the pods, with a disk's files.
    for r in rows:
        if r["type"] == "Disk":
            assert mnt.read("history", r["id"], "name") == r["name"] + "\n"
            assert set(os.listdir(mnt.p("history", r["id"]))) == {
                "id", "name", "size", "status", "price", "cost", "created", "json"}
            continue
        if r["type"] not in PODS:
            assert r["name"] not in listing and r["id"] not in listing
            assert err_of(lambda: os.stat(mnt.p("history", r["id"]))) == errno.ENOENT
            assert err_of(lambda: os.stat(mnt.p("history", r["name"]))) == errno.ENOENT
    # No run, exit or guards in history.
    for f in ("run", "exit"):
        assert err_of(lambda: os.stat(mnt.p("history/a100-1", f))) == errno.ENOENT


def test_history_is_not_refetched_within_its_ttl(api, make_mount):
    """pods_ttl=0: pods are fetched at every access, history is not (its
    window is the offers' by default)."""
    m = make_mount(api, ["pods_ttl=0"])
    api.reset()
    for _ in range(5):
        os.listdir(m.p("pods"))
        os.listdir(m.p("history"))
        m.read("history/a100-1/cost")
    c = api.counts()
    assert c["GET /pods"] >= 5
    assert c["GET /pods/history"] == 1


def test_history_ttl_option(api, make_mount):
    m = make_mount(api, ["history_ttl=0"])
    api.reset()
    for _ in range(3):
        os.listdir(m.p("history"))
    assert api.counts()["GET /pods/history"] == 3


def test_rmdir_shows_in_history_at_once(mnt, api):
    os.listdir(mnt.p("history"))  # held, fresh for a minute
    pid = mnt.read("pods/a40-1/id").strip()
    assert "a40-1" not in os.listdir(mnt.p("history"))
    api.reset()
    os.rmdir(mnt.p("pods/a40-1"))
    assert not os.path.exists(mnt.p("pods/a40-1"))
    # At once, with its files and its last known data, and no history fetch.
    listing = os.listdir(mnt.p("history"))
    assert "a40-1" in listing and pid not in listing
    assert set(os.listdir(mnt.p("history/a40-1"))) == HISTORY_FILES | HIST_DIRS
    assert mnt.read("history/a40-1/id") == pid + "\n"
    assert mnt.read("history", pid, "status") == "TERMINATED\n"
    assert mnt.read("history/a40-1/gpu_type") == mnt.read("history", pid, "gpu_type")
    assert mnt.read("history/a40-1/gpu_type").strip()
    assert api.counts()["GET /pods/history"] == 0
    # Once the history lists it, it is there once, with the billed total.
    mnt.write("ctl", "refresh\n")
    listing = os.listdir(mnt.p("history"))
    assert listing.count("a40-1") == 1 and pid not in listing
    row = [h for h in history_pods(api) if h["id"] == pid][0]
    assert mnt.read("history/a40-1/cost") == "%.4f\n" % row["totalBilledPrice"]
