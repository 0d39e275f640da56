"""Never twice (DESIGN.md, "Pods: status, cost, rent, return"): a pod this
mount asked for counts as existing — for EEXIST, max_pods and the listing of
pods/ — from the moment its create request is sent until a listing shows it
or it is known not to exist, however late the API's listing shows new pods,
and however slow or lost the create's answer. On a real mount against the
fake API's /_admin/lag and /_admin/slow_create."""

import errno
import os
import threading
import time

from conftest import err_of

from test_tree import all_pages

TEMPLATE = "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"


def posts(api):
    return [r for r in api.requests()
            if r["method"] == "POST" and r["path"].split("?")[0].rstrip("/").endswith("/pods")]


def api_pods(api):
    return all_pages(api, "/pods")


def billing_count(api):
    return len({p["id"] for p in api_pods(api)
                if p["status"] in ("PROVISIONING", "PENDING", "ACTIVE", "STOPPED")})


def wait_listed(api, name, secs=30):
    """Until the fake's own listing shows `name` (its lag is over)."""
    deadline = time.monotonic() + secs
    while True:
        found = [p for p in api_pods(api) if p.get("name") == name]
        if found:
            return found[0]
        assert time.monotonic() < deadline, "the fake never listed " + name
        time.sleep(0.2)


def test_lagging_listing_keeps_the_pod_and_the_name(make_api, make_mount):
    """With a 5 s listing lag, the new pod is in pods/ (PENDING) even after
    a refresh fetched a listing without it; a second mkdir is EEXIST and
    nothing is sent twice. Once listed, the listed pod stands for it."""
    api = make_api("--pending-secs", "60")  # the answer says PENDING
    m = make_mount(api)
    m.write("config", "max_pods = 100\n" + TEMPLATE)
    api.admin("lag", {"secs": 5.0})
    api.reset()
    os.mkdir(m.p("pods", "x"))
    m.write("ctl", "refresh\n")
    assert "x" in os.listdir(m.p("pods")), m.log()
    assert m.read("pods/x/status") == "PENDING\n"
    assert err_of(lambda: os.mkdir(m.p("pods", "x"))) == errno.EEXIST
    m.write("ctl", "refresh\n")
    assert err_of(lambda: os.mkdir(m.p("pods", "x"))) == errno.EEXIST
    assert len(posts(api)) == 1
    pod = wait_listed(api, "x")
    m.write("ctl", "refresh\n")
    assert m.read("pods/x/id") == pod["id"] + "\n"
    assert len(posts(api)) == 1
    assert [p["name"] for p in api_pods(api)].count("x") == 1


def test_max_pods_counts_unsettled_creates(make_api, make_mount):
    """max_pods counts a create the lagging listing does not show yet.
    (One still on the wire cannot be raced from the mount: the kernel
    holds pods/ locked for the whole of a mkdir in it.)"""
    api = make_api("--pending-secs", "0", "--install-secs", "0")
    m = make_mount(api)
    api.admin("lag", {"secs": 30.0})
    m.write("config", "max_pods = %d\n%s" % (billing_count(api) + 1, TEMPLATE))
    m.write("ctl", "refresh\n")
    os.mkdir(m.p("pods", "one-more"))
    m.write("ctl", "refresh\n")
    assert err_of(lambda: os.mkdir(m.p("pods", "two-more"))) == errno.EDQUOT, m.log()
    assert "max_pods" in m.log()
    assert [r["body"]["pod"]["name"] for r in posts(api)] == ["one-more"]


def test_slow_create_past_the_call_timeout(make_api, make_mount):
    """A create answered after 15 s (over the 10 s limit of other calls)
    succeeds with one POST; while the listing lags, the pod is listed as
    PENDING from the answer and its name is taken."""
    api = make_api("--pending-secs", "60")  # the answer says PENDING
    m = make_mount(api)
    m.write("config", "max_pods = 100\n" + TEMPLATE)
    api.admin("lag", {"secs": 60.0})
    api.admin("slow_create", {"secs": 15.0})
    api.reset()
    result = {}
    t = threading.Thread(target=lambda: result.update(rc=err_of(
        lambda: os.mkdir(m.p("pods", "slow")))))
    t.start()
    t.join(60)
    assert not t.is_alive(), "mkdir hangs"
    assert result == {"rc": 0}, m.log()
    assert len(posts(api)) == 1
    m.write("ctl", "refresh\n")
    assert "slow" in os.listdir(m.p("pods"))
    assert m.read("pods/slow/status") == "PENDING\n"
    assert m.read("pods/slow/id").strip() != "slow"  # the answer's id
    assert err_of(lambda: os.mkdir(m.p("pods", "slow"))) == errno.EEXIST
    assert len(posts(api)) == 1


def test_lost_answer_with_lag_keeps_the_name(make_api, make_mount):
    """The answer is lost (connection reset after the pod was created) and
    the listing lags: mkdir fails, but the name stays taken and listed as
    PENDING; one POST; once the listing shows the pod it is listed as
    any other, and rmdir returns it."""
    api = make_api("--pending-secs", "0", "--install-secs", "0")
    m = make_mount(api)
    m.write("config", "max_pods = 100\n" + TEMPLATE)
    api.admin("lag", {"secs": 5.0})
    api.admin("slow_create", {"secs": 0.1, "lose": True})
    api.reset()
    assert err_of(lambda: os.mkdir(m.p("pods", "lost"))) in (errno.EIO, errno.ETIMEDOUT)
    assert "stays taken" in m.log()
    assert "lost" in os.listdir(m.p("pods"))
    assert m.read("pods/lost/status") == "PENDING\n"
    m.write("ctl", "refresh\n")
    assert "lost" in os.listdir(m.p("pods"))
    assert err_of(lambda: os.mkdir(m.p("pods", "lost"))) == errno.EEXIST
    assert len(posts(api)) == 1
    pod = wait_listed(api, "lost")
    m.write("ctl", "refresh\n")
    assert m.read("pods/lost/id") == pod["id"] + "\n"
    assert m.read("pods/lost/status") != "PENDING\n"  # the listed pod, ACTIVE
    os.rmdir(m.p("pods", "lost"))
    assert [r["path"] for r in api.requests() if r["method"] == "DELETE"] \
        == ["/api/v1/pods/" + pod["id"]]
    assert len(posts(api)) == 1


def test_refused_create_frees_the_name(api, make_mount):
    """A create the API refused (402, 422) was not made: the name is free
    at once, nothing is listed, and the next mkdir sends a request."""
    m = make_mount(api)
    m.write("config", "max_pods = 100\n" + TEMPLATE)
    os.listdir(m.p("availability/H100_80GB"))  # offers cached
    api.admin("lag", {"secs": 30.0})
    api.reset()
    api.admin("balance", {"balance": 0})
    assert err_of(lambda: os.mkdir(m.p("pods", "broke"))) == errno.EDQUOT
    assert "broke" not in os.listdir(m.p("pods"))
    api.admin("balance", {"balance": 1000})
    os.mkdir(m.p("pods", "broke"))
    assert "broke" in os.listdir(m.p("pods"))
    assert len(posts(api)) == 2
    api.admin("offers", {"remove": {"gpuType": "H100_80GB"}})  # gone behind our back
    assert err_of(lambda: os.mkdir(m.p("pods", "late"))) == errno.EINVAL
    assert "HTTP 422" in m.log()
    assert "late" not in os.listdir(m.p("pods"))
    assert err_of(lambda: os.mkdir(m.p("pods", "late"))) == errno.EINVAL  # not EEXIST
    assert len(posts(api)) == 4
