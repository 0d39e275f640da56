"""The API's call budget on a real mount (DESIGN.md "Budgets and the API's
call budget"): at most api_budget calls in any rolling hour, POST and
DELETE always sent; a 429's Retry-After holds every later call (reads get
the held answer, an rmdir waits it out, then goes); a job waiting for a
starting pod polls GET /pods/status, not the listing; `stats` shows the
hour's calls; /pods is paged to the end without a total_count."""

import errno
import os
import signal
import subprocess
import threading
import time

from conftest import err_of

CONFIG = "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"


def wait_for(cond, what, limit=60):
    """A hang bound, not a timing assertion."""
    deadline = time.time() + limit
    while not cond():
        assert time.time() < deadline, what
        time.sleep(0.05)


def counted(counts):
    """The calls the budget counts: all but POST and DELETE."""
    return sum(n for k, n in counts.items() if not k.startswith(("POST ", "DELETE ")))


def test_waiters_on_starting_pods_poll_their_status_together(pod, keys, make_api, make_mount,
                                                             tmp_path):
    api = make_api("--ssh", f"root@127.0.0.1:{pod.port}",
                   "--pending-secs", "6", "--install-secs", "3")
    # A long pods_ttl: nothing but the waiters has a reason to call.
    m = make_mount(api, options=(f"ssh_key={keys[0]}",
                                 f"known_hosts={tmp_path / 'known_hosts'}",
                                 "ready_timeout=60", "timeout=5", "pods_ttl=600"))
    m.write("config", CONFIG)
    os.mkdir(m.p("pods/w"))
    os.mkdir(m.p("pods/v"))
    assert {"w", "v"} <= set(os.listdir(m.p("pods")))
    ids = {m.read(f"pods/{p}/id").strip() for p in ("w", "v")}
    assert m.read("pods/w/status") in ("PENDING\n", "PROVISIONING\n")
    api.reset()

    errors = []

    def job(p, text):
        try:
            with open(m.p(f"pods/{p}/run"), "w") as f:
                f.write(f"echo {text}\n")
        except OSError as e:
            errors.append(e)

    # Two jobs wait for w, one for v.
    waiters = [threading.Thread(target=job, args=a)
               for a in (("w", "one"), ("w", "two"), ("v", "three"))]
    for t in waiters:
        t.start()
    for t in waiters:
        t.join(90)
    assert not any(t.is_alive() for t in waiters), "the jobs never started"
    assert errors == []
    counts = api.counts()
    assert counts["GET /pods/status"] >= 1
    assert counts["GET /pods"] == 0, counts
    asked = [r["query"]["pod_ids"] for r in api.requests()
             if r["path"] == "/api/v1/pods/status"]
    for q in asked:
        assert len(q) == len(set(q)) and set(q) <= ids, q
    # One call for both pods, however many wait for each.
    assert any(set(q) == ids for q in asked), asked
    wait_for(lambda: sorted(os.listdir(m.p("pods/w/jobs"))) == ["1", "2", "latest"],
             "two jobs on w")
    outs = set()
    for p, n in (("w", "1"), ("w", "2"), ("v", "1")):
        wait_for(lambda: m.read(f"pods/{p}/jobs/{n}/exit") == "0\n", "job ended")
        outs.add(m.read(f"pods/{p}/jobs/{n}/out"))
    assert outs == {"one\n", "two\n", "three\n"}
    assert "the pod is ready" in m.log()


def test_a_429_holds_every_later_call_and_rmdir_waits_it_out(api, make_mount):
    m = make_mount(api, options=("pods_ttl=0.3", "timeout=5"))
    assert m.read("pods/demo/status") == "ACTIVE\n"
    assert "a100-1" in os.listdir(m.p("pods"))
    # Long enough that the hold outlasts the checks below on a busy
    # machine (the rmdir interrupted must still find it).
    api.fault(kind="429", match="GET /pods", count=1, retry_after=45)
    # A read past pods_ttl refreshes behind the held answer: that call
    # gets the 429.
    wait_for(lambda: m.read("pods/demo/status") == "ACTIVE\n"
             and any(r["status"] == 429 for r in api.requests()), "the 429")
    api.reset()
    # During the hold every read is served from the held answer, and no
    # call reaches the API (a backoff of 1 s, then 2 s, would have).
    until = time.monotonic() + 4
    while time.monotonic() < until:
        assert m.read("pods/demo/status") == "ACTIVE\n"
        assert "a100-1" in os.listdir(m.p("pods"))
        time.sleep(0.1)
    assert sum(api.counts().values()) == 0, api.counts()

    # An rmdir waiting out the hold ends when interrupted, sending nothing.
    p = subprocess.Popen(["rmdir", m.p("pods/a100-1")])
    time.sleep(1)
    assert p.poll() is None, "rmdir did not wait for the hold"
    p.send_signal(signal.SIGINT)
    p.wait(60)
    assert sum(api.counts().values()) == 0, api.counts()
    assert "interrupted while waiting out" in m.log()
    assert "a100-1" in os.listdir(m.p("pods"))

    # One left alone waits, then goes.
    done = []
    t = threading.Thread(target=lambda: done.append(err_of(lambda: os.rmdir(m.p("pods/a100-1")))))
    t.start()
    time.sleep(1)
    assert t.is_alive(), "rmdir did not wait for the hold"
    assert sum(api.counts().values()) == 0, api.counts()
    t.join(90)
    assert not t.is_alive(), "rmdir never went"
    assert done == [0]
    assert api.counts()["DELETE /pods/{id}"] == 1
    assert "a100-1" not in os.listdir(m.p("pods"))
    log = m.log()
    assert "Retry-After" in log
    assert "serving the answer of" in log


def test_a_tiny_budget_is_never_exceeded(api, make_mount):
    m = make_mount(api, options=("api_budget=12", "pods_ttl=0.2", "offers_ttl=0.2"))
    deadline = time.time() + 15
    while time.time() < deadline:
        r = subprocess.run("cat pods/*/status balance >/dev/null && ls availability >/dev/null",
                           shell=True, cwd=m.path, stderr=subprocess.PIPE, text=True)
        # Reads are served from what is held, however old.
        assert r.returncode == 0, r.stderr
        time.sleep(0.2)
    counts = api.counts()
    assert 0 < counted(counts) <= 12, counts
    st = m.stats()
    assert st["api_budget"] == 12
    assert st["api_calls_hour"] == counted(counts)
    assert "call budget is tight" in m.log()


def test_a_read_with_nothing_held_fails_once_the_budget_is_spent(api, make_mount):
    m = make_mount(api, options=("api_budget=1",))
    assert "demo" in os.listdir(m.p("pods"))
    assert err_of(lambda: m.read("balance")) == errno.EAGAIN
    assert counted(api.counts()) == 1
    assert "call budget" in m.log()


def test_stats_show_the_hours_calls(api, make_mount):
    m = make_mount(api)
    assert "demo" in os.listdir(m.p("pods"))
    m.read("balance")
    os.rmdir(m.p("pods/a100-1"))
    st = m.stats()
    counts = api.counts()
    assert st["api_budget"] == 900
    assert st["api_calls_hour"] == counted(counts) > 0
    assert st["api_calls_hour_always"] == counts["DELETE /pods/{id}"] == 1
    assert st["api_held_s"] == 0


def test_pods_are_paged_to_the_end_without_total_count(make_api, make_mount):
    api = make_api("--pods", "250", "--omit-total-count")
    m = make_mount(api)
    names = os.listdir(m.p("pods"))
    assert {"gen-0001", "gen-0100", "gen-0101", "gen-0250", "demo"} <= set(names)
    pages = [r for r in api.requests() if r["path"] == "/api/v1/pods/"]
    assert [int(r["query"]["offset"][0]) for r in pages] == [0, 100, 200]
