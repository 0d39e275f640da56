"""No operation waits on an unrelated network call (issue 15): a guard write
answers while a slow mkdir holds pods/ locked, and the root's listing, ctl,
log and guard writes answer while the API hangs. On a real mount against
the fake API's slow_create and slow faults; every held request is answered
by /_admin/release before the test ends, so no hang outlives its test."""

import errno
import os
import subprocess
import threading
import time

from conftest import err_of

TEMPLATE = "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"


def wait_for(cond, bound=30):
    """cond() within `bound` seconds: a bound that only catches a hang."""
    deadline = time.monotonic() + bound
    while not cond():
        assert time.monotonic() < deadline, "not within %s s" % bound
        time.sleep(0.05)


def held(api):
    """Requests the fake API holds unanswered now."""
    return api.admin("stats")["held"]


class Background:
    """fn() on a thread of its own; its result or exception once done."""

    def __init__(self, fn):
        self.result = self.error = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.result = fn()
        except Exception as e:  # noqa: BLE001 - handed to the test
            self.error = e

    def done(self):
        return not self.thread.is_alive()

    def join(self, bound):
        self.thread.join(bound)
        return self.done()


def sh(m, script):
    """A bash command line run in the mount; its stdout. A bound that only
    catches a hang (a process waiting in FUSE dies with the timeout)."""
    r = subprocess.run(["bash", "-c", script], cwd=m.path, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_guard_write_while_a_slow_mkdir_holds_pods(api, make_mount):
    """The kernel holds pods/ locked for as long as a mkdir there waits for
    the API's answer. A pod that went meanwhile must have its name told
    gone in pods/, which waits for that lock: a guard write (and a stat)
    must not wait for it, and the name is told once the mkdir returns."""
    m = make_mount(api, options=("pods_ttl=1", "timeout=60"))
    victim = api.admin("pods", {"add": [{"name": "victim"}]})["added"][0]
    # The kernel holds these names: a lookup of a name it does not hold
    # waits for the directory's lock (the kernel's own rule), a
    # revalidation of one it holds does not.
    os.stat(m.p("pods", "victim"))
    os.stat(m.p("pods", "demo", "status"))
    os.stat(m.p("pods", "demo", "deadline"))
    m.write("config", TEMPLATE)
    api.admin("slow_create", {"secs": 120})  # answered by release below
    try:
        mkdir = Background(lambda: os.mkdir(m.p("pods", "slowone")))
        wait_for(lambda: held(api) == 1)  # the POST is in, its answer held
        listings = api.counts()["GET /pods"]
        api.admin("pods", {"delete": [victim]})
        # A listing past pods_ttl shows victim gone (a getattr fetches it;
        # a lookup in pods/ would wait for the lock the mkdir holds).
        wait_for(lambda: os.stat(m.p("pods", "demo", "status"))
                 and api.counts()["GET /pods"] > listings)
        os.stat(m.p("pods", "demo", "status"))  # that listing is in
        assert not mkdir.done()
        write = Background(lambda: sh(m, "echo 3h > pods/demo/deadline"))
        # The mkdir is held until release: a write that waits for pods/'s
        # lock in the kernel returns only after it; one that waits in
        # primefs gives up after 5 s (KC_SYNC_WAIT) with the log line
        # checked below. The bound only catches a hang.
        write.join(30)
        write_first = write.done() and not mkdir.done()
    finally:
        api.admin("release")
    assert mkdir.join(60)
    assert mkdir.error is None, mkdir.error
    assert write.join(30)
    assert write.error is None, write.error
    assert write_first, "the guard write waited for the mkdir"
    assert m.read("pods", "demo", "deadline").strip()
    assert err_of(lambda: os.stat(m.p("pods", "victim"))) == errno.ENOENT
    assert "slowone" in os.listdir(m.p("pods"))
    assert "not told of a change in time" not in m.log()


def test_root_ctl_log_and_guards_answer_while_the_api_hangs(api, make_mount):
    """Every API call hangs (TCP up, nothing answers) with a time limit
    longer than the test: what waited for the network would still be
    waiting when the hang is released."""
    m = make_mount(api, options=("timeout=60",))
    assert "demo" in os.listdir(m.p("pods"))
    os.stat(m.p("pods", "demo", "deadline"))
    api.fault(kind="slow", delay=120)  # answered by release below
    try:
        # A reader of the never-fetched wallet: the one that may wait.
        balance = Background(lambda: m.read("balance"))
        wait_for(lambda: held(api) >= 1)

        def answers(script):
            out = sh(m, script)
            assert held(api) >= 1, "the hang ended first"
            return out

        assert "balance" in answers("ls").split()
        listing = answers("ls -l")
        assert "?" not in listing, listing  # every entry stat'ed
        assert "mount /" in answers("cat log")
        # A pod's cost and offer need the wallet and the offers, never
        # fetched here: their stat does not wait for them either.
        listing = answers("ls -l pods/demo")
        assert "?" not in listing and " offer" in listing, listing
        answers("echo 3h > pods/demo/deadline")
        answers("echo refresh > ctl")
        assert "balance" in answers("ls -l").split()
        assert "refresh" in answers("cat log")
        assert not balance.done()  # still waiting for the hung API
    finally:
        api.clear_faults()
        api.admin("release")
    assert balance.join(90)
    assert m.read("pods", "demo", "deadline").strip()


def test_guard_write_after_refresh_while_the_api_hangs(api, make_mount):
    """`echo refresh > ctl` marks every listing stale and the kernel forgets
    its names; a guard write to a pod this mount knows must still answer
    while the API hangs: a pod's directory and guard files are resolved by
    the pod's name in the held listing (src/tree/tree_walk.c,
    by_pod_name). Without that, the lookup of pods/demo waits for the hung
    listing up to timeout= (60 s here), and the fake would no longer hold
    the request when the write returns. (A reader of pods/demo/status
    waits in its lookup, holding pods/demo's lock that the kernel takes
    for an O_CREAT open there: the hang is held by a wallet reader.)"""
    m = make_mount(api, options=("timeout=60",))
    assert "demo" in os.listdir(m.p("pods"))
    os.stat(m.p("pods", "demo", "deadline"))
    api.fault(kind="slow", delay=120)  # answered by release below
    try:
        sh(m, "echo refresh > ctl")
        # A reader of the never-fetched wallet holds the hung request.
        balance = Background(lambda: m.read("balance"))
        wait_for(lambda: held(api) >= 1)
        write = Background(lambda: sh(m, "echo 3h > pods/demo/deadline"))
        assert write.join(30), "the guard write waited for the hung API"
        assert held(api) >= 1, "the hang ended first"
        assert write.error is None, write.error
        assert not balance.done()
    finally:
        api.clear_faults()
        api.admin("release")
    assert balance.join(90)
    assert m.read("pods", "demo", "deadline").strip()
