"""A slow or failing API: readers get the held answers at once while a
refresh is on the wire, fetches back off after failures, and a `refresh`
written to ctl keeps the answers for an outage (rmdir and run still find
their pod)."""

import os
import time


def wait_for(cond, bound=20):
    """cond() within `bound` seconds: a bound that only catches a hang."""
    deadline = time.monotonic() + bound
    while not cond():
        assert time.monotonic() < deadline, "not within %s s" % bound
        time.sleep(0.05)


def answered_listings(api):
    return sum(1 for r in api.requests() if r["path"] == "/api/v1/pods/")


def test_slow_refresh_serves_the_held_listing(api, make_mount):
    m = make_mount(api, options=("pods_ttl=1", "timeout=30"))
    before = set(os.listdir(m.p("pods")))
    assert "demo" in before
    assert api.counts()["GET /pods"] == 1
    api.admin("pods", {"add": [{"name": "late-pod"}]})
    # The next listing takes 8 s (and will show late-pod).
    api.fault(kind="slow", delay=8, match="GET /pods", count=1)
    time.sleep(1.2)  # past pods_ttl
    for _ in range(3):
        assert set(os.listdir(m.p("pods"))) == before  # the held listing
        wait_for(lambda: api.counts()["GET /pods"] == 2)
        # ... returned while the refresh was on the wire, unanswered.
        assert answered_listings(api) == 1
        time.sleep(0.3)
    assert api.counts()["GET /pods"] == 2  # one refresh for every reader
    wait_for(lambda: "late-pod" in os.listdir(m.p("pods")))


def test_outage_backs_off(api, make_mount):
    m = make_mount(api, options=("pods_ttl=0.2", "timeout=5"))
    assert "demo" in os.listdir(m.p("pods"))
    api.fault(kind="500", match="GET /pods")
    api.reset()
    end = time.monotonic() + 15
    while time.monotonic() < end:
        # The held answer throughout the outage.
        assert "demo" in os.listdir(m.p("pods"))
        time.sleep(0.1)
    # A failed listing is 4 requests (3 retries). A fixed 1 s hold-down
    # would try about 10 times in these 15 s; backing off 1, 2, 4, 8 s
    # tries 4 or 5 times.
    fetches = api.counts()["GET /pods"] / 4
    assert 1 <= fetches <= 5
    assert "serving the answer" in m.log()
    # The API is back: a refresh tries at once and shows its answer.
    api.clear_faults()
    api.admin("pods", {"add": [{"name": "after-outage"}]})
    m.write("ctl", "refresh\n")
    assert "after-outage" in os.listdir(m.p("pods"))


def test_refresh_then_outage_keeps_answers_for_rmdir(api, make_mount):
    api.admin("pods", {"add": [{"name": "doomed"}]})
    m = make_mount(api, options=("timeout=3",))
    assert "doomed" in os.listdir(m.p("pods"))
    m.write("ctl", "refresh\n")
    api.fault(kind="500", match="GET /pods")
    # The refresh's fetch fails: the held answers are served.
    assert "doomed" in os.listdir(m.p("pods"))
    assert m.read("pods/doomed/status") == "ACTIVE\n"
    os.rmdir(m.p("pods/doomed"))
    assert api.counts()["DELETE /pods/{id}"] == 1
    assert "doomed" not in os.listdir(m.p("pods"))
    assert "demo" in os.listdir(m.p("pods"))


def test_refresh_then_outage_run_still_works(pod, keys, make_api, make_mount,
                                             tmp_path):
    api = make_api("--ssh", f"root@127.0.0.1:{pod.port}")
    m = make_mount(api, options=(f"ssh_key={keys[0]}",
                                 f"known_hosts={tmp_path / 'known_hosts'}",
                                 "timeout=3"))
    assert m.read("pods/demo/status") == "ACTIVE\n"
    m.write("ctl", "refresh\n")
    api.fault(kind="500", match="GET /pods")
    with open(m.p("pods/demo/run"), "w") as f:
        f.write("echo up\n")
    assert m.read("pods/demo/run") == "up\n"
    assert m.read("pods/demo/exit") == "0\n"
