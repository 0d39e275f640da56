"""Where faults meet (issue 15): each test combines two or more faults an
unattended script meets in its third week, on a real mount against the
fake API's admin controls (lost answers, listing lag, slow creates, hangs,
429s, hidden pods) and a real state directory. Each names in its
docstring the fix it depends on: without that fix it fails.

Hangs are released by /_admin/release in `finally`, so none outlives its
test; every bound is a "did not hang" bound, never a time asserted."""

import errno
import os
import signal
import subprocess
import threading
import time

from conftest import err_of

from test_never_twice import posts, wait_listed
from test_nostall import Background, held
from test_statedir import fill, small_tmpfs  # noqa: F401 - a fixture

TEMPLATE = "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"
HANG = 60  # seconds: only catches a hang


def poll(cond, what, secs=90):
    """cond()'s first true value, polled; `secs` only catches a hang."""
    deadline = time.monotonic() + secs
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < deadline, "never: " + what
        time.sleep(0.2)


def deletes(api):
    return [r["path"] for r in api.requests() if r["method"] == "DELETE"]


def ok_deletes(api, pid):
    return [r for r in api.requests()
            if r["method"] == "DELETE" and r["path"].rstrip("/").endswith("/" + pid)
            and r["status"] is not None and 200 <= r["status"] < 300]


def lost_answer(api, lag):
    """The next create's answer is lost and new pods list `lag` s late."""
    api.admin("lag", {"list_secs": lag, "delete_secs": 0})
    api.admin("slow_create", {"secs": 0.1, "lose": True})


def settle(m, name):
    """A fresh listing (as ls after a refresh): the pod's real id once the
    listing shows it, else ""."""
    m.write("ctl", "refresh\n")
    os.listdir(m.p("pods"))
    try:
        return m.read("pods", name, "id").strip()
    except FileNotFoundError:
        return ""


def state_mount(make_mount, api, tmp_path, options=()):
    """A mount whose state directory and template outlive it."""
    state, config = tmp_path / "state", tmp_path / "config"
    state.mkdir(mode=0o700, exist_ok=True)
    if not config.exists():
        config.write_text(TEMPLATE)
    return make_mount(api, options=("state=%s" % state, "config=%s" % config)
                      + tuple(options))


def sh(m, script, check=True):
    """A bash command line run in the mount (a process waiting in FUSE dies
    with the timeout: a bound that only catches a hang)."""
    r = subprocess.run(["bash", "-c", script], cwd=m.path, capture_output=True,
                       text=True, timeout=HANG)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def hang_api(api, m):
    """Every API call from now hangs (TCP up, no answer) until release; a
    reader of the never-fetched wallet holds one, so the hang is seen."""
    api.fault(kind="slow", delay=300)
    reader = Background(lambda: m.read("balance"))
    poll(lambda: held(api) >= 1, "the API holds a request", HANG)
    return reader


def end_hang(api):
    api.clear_faults()
    api.admin("release")


def test_lost_answer_guard_on_placeholder_kill_9_and_remount(make_api, make_mount, tmp_path):
    """A lost create answer, a listing 10 s late, the template's guards, a
    deadline written to the placeholder, kill -9 of the daemon, and a new
    mount on the same state directory: the pod is settled once, the
    template's and the written guards apply to it, exactly one POST, and
    the deadline fires by the pod's real id (never by its name).
    Depends on: pending.c (the request recorded before it is sent and read
    back at mount; a 404 settles nothing), guards kept for a placeholder by
    its name and moved to the id when it settles, the template's guards
    armed when a listing settles a lost answer (lifecycle/pending hook)."""
    api = make_api("--pending-secs", "0", "--install-secs", "0")
    (tmp_path / "config").write_text(TEMPLATE + "idle = 45m\nmax_cost = 50\n")
    m = state_mount(make_mount, api, tmp_path)
    lost_answer(api, 10.0)
    api.reset()
    assert err_of(lambda: os.mkdir(m.p("pods", "both"))) in (errno.EIO, errno.ETIMEDOUT)
    with open(m.p("pods", "both", "deadline"), "w") as f:
        f.write("30s\n")
    assert m.read("pods", "both", "deadline").strip()
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait(HANG)
    subprocess.run(["fusermount3", "-u", "-z", m.path], check=False)

    m2 = state_mount(make_mount, api, tmp_path)
    assert "both" in os.listdir(m2.p("pods"))  # the record, read back
    assert err_of(lambda: os.mkdir(m2.p("pods", "both"))) == errno.EEXIST
    pod = wait_listed(api, "both")
    assert poll(lambda: settle(m2, "both"), "settled") == pod["id"]
    guards = m2.read("pods", "both", "guards")
    if "fired" not in guards:  # (a very slow machine: due already)
        assert "deadline:" in guards and "idle:" in guards and "max_cost:" in guards, guards
        assert m2.read("pods", "both", "idle") == "45m\n"
    poll(lambda: deletes(api), "the written deadline fired")
    assert deletes(api) == ["/api/v1/pods/" + pod["id"]]
    assert len(posts(api)) == 1
    assert "deadline" in m2.log()
    assert m2.proc.poll() is None, m2.output()


def test_rmdir_of_a_placeholder_while_the_api_hangs(make_api, make_mount):
    """rmdir of a placeholder while every API call hangs returns 0 within
    the time limit (5 s here; it asks for a fresh listing first, in case
    the pod settled meanwhile, and goes on without it) while the hang
    lasts; the name leaves pods/. After the hang ends, the pod appears in
    the listing and is terminated by its id; one POST.
    Depends on: pending.c's "unwanted" (rmdir of a placeholder terminates
    the pod once listed, not only forgets the request; without it the pod
    lives on) and every wait having a deadline (DESIGN "Freshness")."""
    api = make_api("--pending-secs", "0", "--install-secs", "0")
    m = make_mount(api, options=("timeout=5",))
    m.write("config", TEMPLATE)
    lost_answer(api, 4.0)
    api.reset()
    assert err_of(lambda: os.mkdir(m.p("pods", "ghost"))) in (errno.EIO, errno.ETIMEDOUT)
    assert "ghost" in os.listdir(m.p("pods"))
    reader = None
    try:
        reader = hang_api(api, m)
        rmdir = Background(lambda: os.rmdir(m.p("pods", "ghost")))
        assert rmdir.join(HANG), "rmdir waited for the hung API"
        assert held(api) >= 1, "the hang ended first"
        assert rmdir.error is None, rmdir.error
        assert "ghost" not in os.listdir(m.p("pods"))
        assert held(api) >= 1, "the hang ended first"
    finally:
        end_hang(api)
    assert reader.join(HANG)
    assert deletes(api) == []
    pod = wait_listed(api, "ghost")
    poll(lambda: deletes(api), "terminated once listed")
    assert deletes(api) == ["/api/v1/pods/" + pod["id"]]
    assert len(posts(api)) == 1
    assert "which is not wanted (rmdir)" in m.log()


def test_install_failed_idle_and_a_partial_listing(pod, keys, make_api, make_mount, tmp_path):
    """A pod whose install failed bills: its idle guard terminates it even
    though a listing that omits it (offset paging) came between, and that
    partial listing ends no job on another pod it also omitted (the job
    runs on to its own exit status, not `lost`).
    Depends on: guards.c counting INSTALL_FAILED as billing (idle acts on
    every state that bills) and vanished.c (a listing that lacks a pod
    settles nothing unless confirmed: GET /pods/{id} says it lives)."""
    api = make_api("--ssh", f"root@127.0.0.1:{pod.port}",
                   "--pending-secs", "1", "--install-secs", "1")
    m = make_mount(api, options=(f"ssh_key={keys[0]}",
                                 f"known_hosts={tmp_path / 'known_hosts'}",
                                 "ready_timeout=20", "timeout=5", "guards_every=1",
                                 f"state={tmp_path / 'state'}"))
    failed = api.admin("pods", {"add": [{"name": "failed", "status": "ACTIVE",
                                         "installationStatus": "ERROR",
                                         "installationFailure": "Failed to pull image"}]}
                       )["added"][0]
    m.write("ctl", "refresh\n")
    assert m.read("pods", "failed", "status") == "INSTALL_FAILED\n"
    demo = m.read("pods", "demo", "id").strip()
    with open(m.p("pods", "demo", "run"), "w") as f:
        f.write("echo started; sleep 4; echo done\n")
    with open(m.p("pods", "demo", "run"), "rb", buffering=0) as f:
        assert f.read(100) == b"started\n"
    # The next listing omits both pods.
    api.admin("pods", {"hide": {"id": failed, "pages": 1}})
    api.admin("pods", {"hide": {"id": demo, "pages": 1}})
    m.write("pods/failed/idle", "3s\n")
    m.write("ctl", "refresh\n")
    os.listdir(m.p("pods"))  # the listing that lacks them
    poll(lambda: ok_deletes(api, failed), "idle terminated the failed pod")
    assert "idle guard fired: terminating pod failed" in m.log()
    assert poll(lambda: m.read("pods", "demo", "jobs", "1", "exit") != "\n"
                and m.read("pods", "demo", "jobs", "1", "exit"), "the job ended") == "0\n"
    assert m.read("pods", "demo", "jobs", "1", "out") == "started\ndone\n"
    assert not ok_deletes(api, demo)
    assert demo in (tmp_path / "known_hosts").read_text()


def test_guard_write_while_the_api_hangs_on_a_full_state_disk(api, make_mount, small_tmpfs):
    """The API hangs (even after `refresh`, which marks every listing
    stale) and the state disk is full: a guard write fails at once with
    ENOSPC, the old guard is kept, and nothing waits for the API.
    Depends on: statedir.c's atomic_write_file passing the errno up (a
    guard that cannot be kept fails its write: state/guards.c) and
    tree_walk.c resolving a pod this mount holds without a refetch."""
    api.admin("pods", {"add": [{"name": "x"}]})
    m = make_mount(api, options=(f"state={os.path.join(small_tmpfs, 'state')}",
                                 "timeout=60"))
    m.write("pods/x/deadline", "+1h\n")
    before = m.read("pods", "x", "guards")
    deadline = m.read("pods", "x", "deadline")
    assert "deadline: terminates at" in before
    fill(small_tmpfs)
    reader = None
    try:
        reader = hang_api(api, m)
        sh(m, "echo refresh > ctl")
        # The guard is stored when the file is closed: coreutils' echo
        # reports a failed close.
        write = Background(lambda: sh(m, "/bin/echo 2h > pods/x/deadline", check=False))
        assert write.join(HANG), "the guard write waited"
        assert held(api) >= 1, "the hang ended first"
        r = write.result
        assert r.returncode != 0 and "No space left on device" in r.stderr, r
        assert held(api) >= 1, "the hang ended first"
    finally:
        end_hang(api)
    assert reader.join(HANG)
    assert m.read("pods", "x", "guards") == before
    assert m.read("pods", "x", "deadline") == deadline
    assert "No space left on device" in m.log()


def test_planted_links_in_the_pending_directory(api, make_mount, tmp_path):
    """Links planted in the state directory's pending/ (the request's record,
    its temp file) are never written through: a create replaces them with
    a record of primefs's own (0600) or is refused, and the file they
    point to is unchanged.
    Depends on: pending.c saving through statedir.c's atomic_write_file
    (openat, O_NOFOLLOW, rename over the link)."""
    state = tmp_path / "state"
    os.mkdir(state, 0o700)
    os.mkdir(state / "pending", 0o700)
    outside = tmp_path / "precious"
    outside.write_text("keep\n")
    for name in ("evil", ".evil.tmp", "evil.tmp"):
        os.symlink(outside, state / "pending" / name)
    m = make_mount(api, options=(f"state={state}",))
    m.write("config", TEMPLATE)
    api.admin("lag", {"list_secs": 30.0, "delete_secs": 0})
    api.admin("slow_create", {"secs": 0.1, "lose": True})
    api.reset()
    e = err_of(lambda: os.mkdir(m.p("pods", "evil")))
    assert outside.read_text() == "keep\n"
    if e in (errno.EIO, errno.ETIMEDOUT):  # sent, its answer lost: recorded
        st = os.lstat(state / "pending" / "evil")
        assert not os.path.islink(state / "pending" / "evil")
        assert st.st_mode & 0o777 == 0o600
        assert "evil" in (state / "pending" / "evil").read_text()
    else:  # refused before it was sent
        assert e != 0 and posts(api) == [], e
    assert outside.read_text() == "keep\n"


def test_a_planted_link_for_the_pending_directory(api, make_mount, tmp_path):
    """pending/ itself a link to another directory: a create is refused
    before anything is sent, and nothing is written there.
    Depends on: pending.c opening pending/ with mkdir_p's no-follow rule
    (a request that cannot be recorded is not sent)."""
    state = tmp_path / "state"
    os.mkdir(state, 0o700)
    elsewhere = tmp_path / "elsewhere"
    os.mkdir(elsewhere, 0o700)
    os.symlink(elsewhere, state / "pending")
    m = make_mount(api, options=(f"state={state}",))
    m.write("config", TEMPLATE)
    api.reset()
    e = err_of(lambda: os.mkdir(m.p("pods", "evil")))
    assert e in (errno.ELOOP, errno.ENOTDIR), e
    assert posts(api) == []
    assert os.listdir(elsewhere) == []
    assert "evil" not in os.listdir(m.p("pods"))


def test_a_429_during_an_rmdir_while_a_placeholder_settles(make_api, make_mount):
    """A lost create answer leaves a placeholder; then a 429 with a
    Retry-After holds every later call. Meanwhile rmdir of the placeholder
    answers at once (it sends nothing), and an rmdir of a live pod waits
    the hold out and then goes. After the hold, the listing settles the
    placeholder and it is terminated by its real id: one POST, one DELETE
    each, nothing sent during the hold.
    Depends on: budget.c's Retry-After hold for every later call (else the
    DELETE or a listing goes during the hold) and pending.c's unwanted
    placeholder (else the settled pod lives on)."""
    api = make_api("--pending-secs", "0", "--install-secs", "0")
    m = make_mount(api, options=("pods_ttl=0.3", "timeout=5"))
    m.write("config", TEMPLATE)
    assert "a100-1" in os.listdir(m.p("pods"))
    lost_answer(api, 12.0)
    api.reset()
    assert err_of(lambda: os.mkdir(m.p("pods", "late"))) in (errno.EIO, errno.ETIMEDOUT)
    # A hold long enough for what follows on a busy machine.
    api.fault(kind="429", match="GET /pods", count=1, retry_after=20)
    poll(lambda: m.read("pods", "demo", "status") == "ACTIVE\n"
         and any(r["status"] == 429 for r in api.requests()), "the 429", HANG)
    sent = len(api.requests())
    # rmdir of the placeholder answers during the hold: it needs no call.
    os.rmdir(m.p("pods", "late"))
    assert "late" not in os.listdir(m.p("pods"))
    assert len(api.requests()) == sent, api.requests()[sent:]
    # rmdir of a live pod waits the hold out (holding pods/ locked in the
    # kernel meanwhile, which is why it comes second), then goes.
    done = []
    live = threading.Thread(
        target=lambda: done.append(err_of(lambda: os.rmdir(m.p("pods", "a100-1")))))
    live.start()
    poll(lambda: "waiting, then sending" in m.log(), "the rmdir waits the hold out", HANG)
    # Nothing was sent meanwhile (not the rmdir's DELETE, not a listing
    # to settle the placeholder).
    assert live.is_alive() and len(api.requests()) == sent, api.requests()[sent:]
    live.join(HANG * 2)
    assert not live.is_alive(), "the rmdir never went"
    assert done == [0]
    a100 = deletes(api)  # the live pod's, once the hold ended
    assert len(a100) == 1, a100
    pod = wait_listed(api, "late")
    poll(lambda: "/api/v1/pods/" + pod["id"] in deletes(api), "the placeholder terminated")
    assert sorted(deletes(api)) == sorted(a100 + ["/api/v1/pods/" + pod["id"]])
    assert len(posts(api)) == 1
    assert "Retry-After" in m.log()
