"""Guards (DESIGN.md "Guards: pods that stop themselves"): deadline, idle,
max_cost and lease per pod, enforced by primefs's timer while mounted,
kept in the state directory, terminating through the one DELETE path and
retried until the API confirms."""

import errno
import os
import signal
import subprocess
import time
from datetime import datetime, timezone

import pytest

from conftest import err_of

HANG = 20  # seconds: only catches a hang


def add(api, name, **kw):
    return api.admin("pods", {"add": [dict(name=name, **kw)]})["added"][0]


def deletes(api, pid):
    return [r for r in api.requests()
            if r["method"] == "DELETE" and r["path"].rstrip("/").endswith("/" + pid)]


def ok_deletes(api, pid):
    return [r for r in deletes(api, pid) if r["status"] is not None and 200 <= r["status"] < 300]


def wait_for(fn, limit=HANG):
    end = time.time() + limit
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.1)
    return False


def gone(m, name):
    return name not in os.listdir(m.p("pods"))


def iso(text):
    return datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc).timestamp()


@pytest.fixture
def gm(api, make_mount, tmp_path):
    """A mount with its own state directory and a 1 s lease grace."""
    def make(*opts, state=None):
        return make_mount(api, options=(f"state={state or tmp_path / 'state'}",
                                        "lease_grace=1", "guards_every=1") + opts)
    return make


def test_deadline_fires_and_terminates_once(api, gm):
    m = gm()
    pid = add(api, "dl")
    m.write("pods/dl/deadline", "+3s\n")
    due = iso(m.read("pods/dl/deadline"))
    assert "deadline: terminates at" in m.read("pods/dl/guards")
    assert wait_for(lambda: ok_deletes(api, pid)), m.log()
    assert time.time() >= due - 1  # not before its time (1 s: the file's granularity)
    assert wait_for(lambda: gone(m, "dl"))
    assert len(ok_deletes(api, pid)) == 1
    assert "deadline guard fired" in m.log() and "dl" in m.log()
    assert m.stats()["guards_fired"] == 1


def test_max_cost_terminates_an_expensive_pod(api, gm):
    m = gm()
    pid = add(api, "dear", priceHr=1e7)
    m.write("pods/dear/max_cost", "1\n")
    assert m.read("pods/dear/max_cost") == "1\n"
    assert wait_for(lambda: ok_deletes(api, pid)), m.log()
    assert wait_for(lambda: gone(m, "dear"))
    assert "max_cost guard fired" in m.log()


def holder(m, name):
    """A process holding the pod's lease open for writing."""
    p = subprocess.Popen(["bash", "-c", f"exec 9>{m.p('pods', name, 'lease')}; sleep 100"])
    assert wait_for(lambda: m.read(f"pods/{name}/lease") == "held\n"), m.log()
    return p


def test_lease_holder_killed_terminates_after_grace(api, gm):
    m = gm()
    pid = add(api, "ls")
    assert m.read("pods/ls/lease") == "\n"
    h = holder(m, "ls")
    assert "lease: held" in m.read("pods/ls/guards")
    assert not deletes(api, pid)
    h.send_signal(signal.SIGKILL)
    h.wait()
    assert wait_for(lambda: ok_deletes(api, pid)), m.log()
    assert wait_for(lambda: gone(m, "ls"))
    assert "lease guard fired" in m.log()


def test_lease_taken_again_within_grace_keeps_the_pod(api, make_mount, tmp_path):
    m = make_mount(api, options=(f"state={tmp_path / 'state'}", "lease_grace=4"))
    pid = add(api, "kept")
    a = holder(m, "kept")
    a.kill()
    a.wait()
    b = holder(m, "kept")
    time.sleep(6)  # past the grace: the lease was retaken within it
    assert not deletes(api, pid) and not gone(m, "kept")
    b.kill()
    b.wait()
    assert wait_for(lambda: ok_deletes(api, pid)), m.log()


def test_read_only_crawl_never_arms_a_lease(api, gm):
    m = gm()
    pid = add(api, "crawl")
    subprocess.run(["cat", m.p("pods/crawl/lease")], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["grep", "-r", ".", m.p("pods/crawl")], stdout=subprocess.DEVNULL)
    with open(m.p("pods/crawl/lease")) as f:
        f.read()
    assert m.read("pods/crawl/lease") == "\n"
    assert m.read("pods/crawl/guards") == "\n"
    time.sleep(3)  # past the 1 s grace
    assert not deletes(api, pid) and not gone(m, "crawl")


def test_deadline_passed_while_unmounted_fires_at_mount(api, gm, tmp_path):
    state = tmp_path / "keep"
    m = gm(state=state)
    pid = add(api, "later")
    m.write("pods/later/deadline", "+2s\n")
    due = iso(m.read("pods/later/deadline"))
    assert m.stop() == 0
    assert "armed guards" in m.output()
    assert list((state / "guards").iterdir())
    while time.time() < due + 1:
        time.sleep(0.2)
    assert not deletes(api, pid)
    m2 = gm(state=state)
    assert wait_for(lambda: ok_deletes(api, pid)), m2.log()
    assert wait_for(lambda: gone(m2, "later"))
    assert "deadline guard fired" in m2.log()


def test_empty_write_disarms(api, gm):
    m = gm()
    pid = add(api, "calm")
    m.write("pods/calm/deadline", "+2s\n")
    subprocess.run(["bash", "-c", f"echo > {m.p('pods/calm/deadline')}"], check=True)
    assert m.read("pods/calm/deadline") == "\n"
    assert m.read("pods/calm/guards") == "\n"
    time.sleep(4)
    assert not deletes(api, pid) and not gone(m, "calm")


def test_termination_retried_through_faults(api, gm):
    m = gm("timeout=1")
    pid = add(api, "flaky")
    api.fault(kind="500", match="DELETE /pods", count=6)
    m.write("pods/flaky/deadline", "+1s\n")
    assert wait_for(lambda: ok_deletes(api, pid), 60), m.log()
    assert len(deletes(api, pid)) > 1  # the faults were met, then it landed
    assert len(ok_deletes(api, pid)) == 1
    assert wait_for(lambda: gone(m, "flaky"))
    assert "trying again" in m.log()


@pytest.mark.parametrize("file,text", [
    ("deadline", "soon"), ("deadline", "-5m"), ("deadline", "2000-01-01T00:00:00Z"),
    ("idle", "5"), ("idle", "0s"), ("max_cost", "-1"), ("max_cost", "lots"),
])
def test_bad_values_are_einval(api, gm, file, text):
    m = gm()
    add(api, "bad")
    assert err_of(lambda: m.write(f"pods/bad/{file}", text + "\n")) == errno.EINVAL
    assert m.read(f"pods/bad/{file}") == "\n"
    assert "refused" in m.log()


@pytest.mark.parametrize("file,text", [
    ("deadline", "2hours"), ("idle", "5"), ("max_cost", "$5"), ("lease", "1h"),
])
def test_a_bad_value_fails_bashs_own_echo(api, gm, file, text):
    """bash's builtin echo ignores the close that stores a guard: a value
    it cannot take fails the write itself, so a script sees the typo."""
    m = gm()
    add(api, "typo")
    path = m.p(f"pods/typo/{file}")
    r = subprocess.run(["bash", "-c", 'echo "$2" > "$1"', "-", path, text],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Invalid argument" in r.stderr, r
    assert "refused" in m.log()
    if file != "lease":  # (opening the lease for writing holds it)
        assert m.read("pods/typo/guards") == "\n"  # nothing armed
        good = {"deadline": "2h", "idle": "30m", "max_cost": "5"}[file]
        r = subprocess.run(["bash", "-c", 'echo "$2" > "$1"', "-", path, good],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r
        assert file in m.read("pods/typo/guards")


def test_bad_time_logs_the_accepted_forms(api, gm):
    m = gm()
    add(api, "forms")
    assert err_of(lambda: m.write("pods/forms/deadline", "tomorrow\n")) == errno.EINVAL
    log = m.log()
    assert "90m" in log and "ISO-8601" in log


def test_history_pods_have_no_guards(api, gm):
    m = gm()
    hist = [n for n in os.listdir(m.p("history"))]
    assert hist
    h = hist[0]
    for f in ("deadline", "idle", "max_cost", "lease", "guards"):
        assert f not in os.listdir(m.p("history", h))
    assert err_of(lambda: m.write(f"history/{h}/deadline", "1h\n")) == errno.EACCES


def test_lease_of_a_gone_pod_is_enoent(api, gm):
    m = gm()
    pid = add(api, "went")
    assert m.read("pods/went/lease") == "\n"
    os.rmdir(m.p("pods/went"))
    assert err_of(lambda: open(m.p("pods/went/lease"), "w")) == errno.ENOENT
    assert err_of(lambda: open(m.p("pods", pid, "lease"), "w")) == errno.ENOENT


def test_guards_listing_and_modes(api, gm):
    m = gm()
    add(api, "list")
    assert m.read("pods/list/guards") == "\n"
    m.write("pods/list/deadline", "2h")
    m.write("pods/list/idle", "90m")
    m.write("pods/list/max_cost", "12.5")
    assert m.read("pods/list/idle") == "90m\n"
    assert m.read("pods/list/max_cost") == "12.5\n"
    lines = m.read("pods/list/guards").splitlines()
    assert [l.split(":")[0] for l in lines] == ["deadline", "idle", "max_cost"]
    assert iso(m.read("pods/list/deadline")) > time.time() + 3600
    for f in ("deadline", "idle", "max_cost", "lease"):
        assert os.stat(m.p("pods/list", f)).st_mode & 0o777 == 0o600
    assert os.stat(m.p("pods/list/guards")).st_mode & 0o777 == 0o400
    assert err_of(lambda: m.write("pods/list/guards", "x")) == errno.EACCES


def test_template_arms_guards_at_mkdir(api, gm):
    m = gm()
    m.write("config", "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"
                      "deadline = 2h\nmax_cost = 50\n")
    os.mkdir(m.p("pods/tmpl"))
    assert iso(m.read("pods/tmpl/deadline")) > time.time() + 3600
    assert m.read("pods/tmpl/max_cost") == "50\n"


def test_idle_terminates_after_the_last_job(pod, keys, make_api, make_mount, tmp_path):
    """A running job is never idle; once it ends and no job runs for the
    idle time, the pod is terminated."""
    api = make_api("--ssh", f"root@127.0.0.1:{pod.port}")
    m = make_mount(api, options=(f"ssh_key={keys[0]}", f"known_hosts={tmp_path / 'kh'}",
                                 "ready_timeout=20", "timeout=5", "pods_ttl=1", "guards_every=1",
                                 f"state={tmp_path / 'state'}"))
    pid = m.read("pods/demo/id").strip()
    with open(m.p("pods/demo/run"), "w") as f:
        f.write("sleep 4; echo ok\n")
    m.write("pods/demo/idle", "2s")
    assert wait_for(lambda: "idle: a job is running; terminates 2s after the last one ends"
                    in m.read("pods/demo/guards")), m.read("pods/demo/guards")
    assert m.read("pods/demo/exit") == "0\n"  # waits for the job's end
    assert not deletes(api, pid)  # never while the job ran
    assert wait_for(lambda: ok_deletes(api, pid)), m.log()
    assert wait_for(lambda: gone(m, "demo"))
    assert "idle guard fired" in m.log()
