"""Placeholders (DESIGN.md, "A pod whose request is in flight..."): a pod
whose create answer was lost, or whose request is in flight, behaves as the
pod it will become. Its guards (the template's, or written to its files)
apply to it once a listing shows it, a guard never terminates by its name,
rmdir of it means "I do not want this pod" (terminated once listed), and
all of it survives a restart of primefs, even a kill -9. On a real mount
against the fake API's /_admin/lag and /_admin/slow_create."""

import errno
import os
import signal
import subprocess
import threading
import time

from conftest import err_of

from test_never_twice import posts, wait_listed

TEMPLATE = "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"


def post_count(api):
    """POSTs to /pods counted when they arrive (before any answer)."""
    return sum(n for k, n in api.counts().items() if k.startswith("POST /pods"))


def deletes(api):
    return [r["path"] for r in api.requests() if r["method"] == "DELETE"]


def poll(cond, what, secs=90):
    deadline = time.monotonic() + secs
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < deadline, "never: " + what
        time.sleep(0.3)


def lost_answer(api, lag):
    """The next create's answer is lost and new pods list `lag` s late."""
    api.admin("lag", {"list_secs": lag, "delete_secs": 0})
    api.admin("slow_create", {"secs": 0.1, "lose": True})


def settle(m, name):
    """A fresh listing (as ls after a refresh): the pod's real id, once the
    listing shows it."""
    m.write("ctl", "refresh\n")
    os.listdir(m.p("pods"))
    try:
        return m.read("pods", name, "id").strip()
    except FileNotFoundError:  # not in pods/ (or terminated meanwhile)
        return ""


def shared_mount(make_mount, api, tmp_path, **kw):
    """A mount whose state directory and template outlive it."""
    state, config = tmp_path / "state", tmp_path / "config"
    state.mkdir(mode=0o700, exist_ok=True)
    if not config.exists():
        config.write_text(TEMPLATE)
    return make_mount(api, options=("state=%s" % state, "config=%s" % config), **kw)


def test_guard_on_a_placeholder_never_rents_twice(make_api, make_mount):
    """The repro of issue 15: a guard due on a placeholder neither
    terminates by its name nor frees it; a second mkdir is EEXIST (one
    POST); the daemon lives on; once the listing shows the pod, it is
    terminated by its real id."""
    api = make_api("--pending-secs", "0", "--install-secs", "0")
    m = make_mount(api)
    m.write("config", TEMPLATE)
    lost_answer(api, 12.0)
    api.reset()
    assert err_of(lambda: os.mkdir(m.p("pods", "twice"))) in (errno.EIO, errno.ETIMEDOUT)
    with open(m.p("pods", "twice", "deadline"), "w") as f:
        f.write("1s\n")
    poll(lambda: "twice" not in os.listdir(m.p("pods")), "the guard fell due")
    assert err_of(lambda: os.mkdir(m.p("pods", "twice"))) == errno.EEXIST
    assert len(posts(api)) == 1
    assert deletes(api) == []  # nothing by the placeholder's name
    os.listdir(m.p("history"))  # the history copy of a placeholder: none
    assert m.proc.poll() is None, m.output()
    pod = wait_listed(api, "twice")
    poll(lambda: settle(m, "twice") == "" and deletes(api), "terminated once listed")
    assert deletes(api) == ["/api/v1/pods/" + pod["id"]]
    assert len(posts(api)) == 1
    os.listdir(m.p("history"))
    assert m.proc.poll() is None, m.output()


def test_lost_answer_arms_the_template_guards(make_api, make_mount):
    """With the answer lost and the listing late, the template's deadline,
    idle and max_cost apply to the pod once a listing shows it, and the
    deadline (counted from the mkdir) terminates it by its real id."""
    api = make_api("--pending-secs", "0", "--install-secs", "0")
    m = make_mount(api)
    m.write("config", TEMPLATE + "deadline = 25s\nidle = 30m\nmax_cost = 50\n")
    lost_answer(api, 4.0)
    api.reset()
    assert err_of(lambda: os.mkdir(m.p("pods", "tmpl"))) in (errno.EIO, errno.ETIMEDOUT)
    pod = wait_listed(api, "tmpl")
    assert poll(lambda: settle(m, "tmpl"), "listed") == pod["id"]
    guards = m.read("pods", "tmpl", "guards")
    if "fired" not in guards:  # (a very slow machine: due already)
        assert "deadline:" in guards and "idle:" in guards and "max_cost:" in guards, guards
        assert m.read("pods", "tmpl", "idle") == "30m\n"
        assert m.read("pods", "tmpl", "max_cost") == "50\n"
    poll(lambda: deletes(api), "the template's deadline fired")
    assert deletes(api) == ["/api/v1/pods/" + pod["id"]]
    assert "deadline" in m.log()
    assert len(posts(api)) == 1


def test_rmdir_of_a_placeholder_terminates_it_once_listed(make_api, make_mount):
    """rmdir of a placeholder returns 0 at once and it leaves pods/, but the
    name stays taken (EEXIST, no second POST); when the listing shows the
    pod, it is terminated by its real id, and that is logged."""
    api = make_api("--pending-secs", "0", "--install-secs", "0")
    m = make_mount(api)
    m.write("config", TEMPLATE)
    lost_answer(api, 6.0)
    api.reset()
    assert err_of(lambda: os.mkdir(m.p("pods", "ghost"))) in (errno.EIO, errno.ETIMEDOUT)
    os.rmdir(m.p("pods", "ghost"))
    assert "ghost" not in os.listdir(m.p("pods"))
    assert err_of(lambda: os.mkdir(m.p("pods", "ghost"))) == errno.EEXIST
    assert len(posts(api)) == 1
    assert deletes(api) == []
    pod = wait_listed(api, "ghost")
    # With nobody looking: primefs looks for what is pending by itself.
    poll(lambda: deletes(api), "terminated once listed")
    assert deletes(api) == ["/api/v1/pods/" + pod["id"]]
    assert "which is not wanted (rmdir)" in m.log()
    assert len(posts(api)) == 1


def test_kill_9_during_a_slow_create(make_api, make_mount, tmp_path):
    """kill -9 while the create is on the wire; a new mount on the same
    state directory settles it from its record: the name is taken before
    any listing shows it, and once one does, the template's guards apply.
    Exactly one POST."""
    api = make_api("--pending-secs", "0", "--install-secs", "0")
    (tmp_path / "config").write_text(TEMPLATE + "deadline = 2h\nidle = 45m\n")
    m = shared_mount(make_mount, api, tmp_path)
    api.admin("lag", {"list_secs": 6.0, "delete_secs": 0})
    api.admin("slow_create", {"secs": 30.0, "lose": False})
    api.reset()
    t = threading.Thread(target=lambda: err_of(lambda: os.mkdir(m.p("pods", "slow"))))
    t.start()
    poll(lambda: post_count(api), "the POST was sent", 30)
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait(10)
    subprocess.run(["fusermount3", "-u", "-z", m.path], check=False)
    t.join(30)
    api.admin("slow_create", {"secs": 0.0, "lose": False})

    m2 = shared_mount(make_mount, api, tmp_path)
    assert "slow" in os.listdir(m2.p("pods"))
    assert err_of(lambda: os.mkdir(m2.p("pods", "slow"))) == errno.EEXIST
    pod = wait_listed(api, "slow")
    assert poll(lambda: settle(m2, "slow"), "listed") == pod["id"]
    guards = m2.read("pods", "slow", "guards")
    assert "deadline:" in guards and "idle:" in guards, guards
    assert m2.read("pods", "slow", "idle") == "45m\n"
    assert post_count(api) == 1
    assert deletes(api) == []


def test_a_guard_written_to_a_placeholder_survives_a_remount(make_api, make_mount, tmp_path):
    """A deadline written to a placeholder is kept with the request: after
    an unmount and a new mount on the same state directory it is still
    there, and applies to the pod once a listing shows it."""
    api = make_api("--pending-secs", "0", "--install-secs", "0")
    m = shared_mount(make_mount, api, tmp_path)
    lost_answer(api, 8.0)
    api.reset()
    assert err_of(lambda: os.mkdir(m.p("pods", "kept"))) in (errno.EIO, errno.ETIMEDOUT)
    with open(m.p("pods", "kept", "deadline"), "w") as f:
        f.write("+2h\n")
    deadline = m.read("pods", "kept", "deadline")
    assert deadline.strip()
    m.stop()

    m2 = shared_mount(make_mount, api, tmp_path)
    assert m2.read("pods", "kept", "status") == "PENDING\n"
    assert m2.read("pods", "kept", "deadline") == deadline
    assert m2.read("pods", "kept", "id") == "\n"  # no id until settled
    assert err_of(lambda: os.mkdir(m2.p("pods", "kept"))) == errno.EEXIST
    pod = wait_listed(api, "kept")
    assert poll(lambda: settle(m2, "kept"), "listed") == pod["id"]
    assert m2.read("pods", "kept", "deadline") == deadline
    assert "deadline:" in m2.read("pods", "kept", "guards")
    assert len(posts(api)) == 1
    assert deletes(api) == []


def test_a_lease_held_on_a_placeholder_is_the_pods(make_api, make_mount, tmp_path):
    """A lease taken on a placeholder holds the pod once a listing shows it;
    when its holder goes, the pod is terminated (by its id) after the
    grace. The pod's `offer` is the offer recorded at mkdir."""
    api = make_api("--pending-secs", "0", "--install-secs", "0")
    m = make_mount(api, options=("lease_grace=2", "guards_every=1"))
    m.write("config", TEMPLATE)
    lost_answer(api, 5.0)
    api.reset()
    assert err_of(lambda: os.mkdir(m.p("pods", "held"))) in (errno.EIO, errno.ETIMEDOUT)
    holder = subprocess.Popen(["bash", "-c", "exec 9>%s; sleep 300" % m.p("pods", "held", "lease")])
    try:
        poll(lambda: m.read("pods", "held", "lease") == "held\n", "the lease is held", 30)
        pod = wait_listed(api, "held")
        assert poll(lambda: settle(m, "held"), "listed") == pod["id"]
        assert m.read("pods", "held", "lease") == "held\n"
        offer = m.read("pods", "held", "offer").strip()
        assert offer.startswith("H100_80GB/") and os.path.isdir(m.p("availability", offer)), offer
        time.sleep(3)  # past the grace: a lease still held keeps the pod
        assert deletes(api) == []
    finally:
        holder.kill()
        holder.wait()
    poll(lambda: deletes(api), "the lease's grace ran out")
    assert deletes(api) == ["/api/v1/pods/" + pod["id"]]
    assert len(posts(api)) == 1
