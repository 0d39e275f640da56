"""collect (DESIGN.md "Collect: results kept when a pod goes"): what a pod's
`collect` names is copied over SFTP from its home into the state directory
before primefs terminates it, by rmdir or by a guard, and shown read-only at
history/<pod>/files/ in this and later mounts; bounded by collect_timeout
and collect_max, and never waited for on a pod that cannot be reached. A
real mount, the fake API, and a real OpenSSH sshd as the pod."""

import errno
import os
import subprocess
import time

import pytest

from conftest import err_of
from sshd import Sshd

HANG = 60  # seconds: only catches a hang


def wait_for(fn, limit=HANG):
    end = time.time() + limit
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def pod(tmp_path, keys):
    """The test sshd, its SFTP starting in the home its jobs start in."""
    s = Sshd(tmp_path / "sshd", authorized_keys=[keys[1]], sftp_in_home=True)
    yield s
    s.stop()


@pytest.fixture
def cm(pod, keys, make_api, make_mount, tmp_path):
    """A mount on the fake API whose pods are the test sshd, with its own
    state directory; cm(*opts) mounts (again, for a remount)."""
    api = make_api("--ssh", f"root@127.0.0.1:{pod.port}",
                   "--pending-secs", "1", "--install-secs", "1")

    def make(*opts):
        m = make_mount(api, options=(f"ssh_key={keys[0]}",
                                     f"known_hosts={tmp_path / 'known_hosts'}",
                                     "ready_timeout=20", "timeout=5",
                                     "pods_ttl=1", "guards_every=1",
                                     f"state={tmp_path / 'state'}") + opts)
        m.api = api
        m.state = tmp_path / "state"
        return m
    return make


def run(m, script, pod="demo"):
    with open(m.p("pods", pod, "run"), "w") as f:
        f.write(script + "\n")
    assert m.read("pods", pod, "exit") == "0\n", m.read("pods", pod, "run")


def history_dir(m, pid):
    """history/<pod>/ of the pod with this id (by name or by id)."""
    for name in os.listdir(m.p("history")):
        try:
            if m.read("history", name, "id").strip() == pid:
                return m.p("history", name)
        except OSError:
            pass
    return None


def tree(top):
    """{relative path: content} of the regular files under top."""
    out = {}
    for d, _, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            with open(p) as fh:
                out[os.path.relpath(p, top)] = fh.read()
    return out


def test_rmdir_brings_back_what_collect_names(cm):
    m = cm()
    run(m, "rm -rf results logs; mkdir -p results/sub logs; "
           "echo 42 > results/a.json; echo deep > results/sub/b.txt; "
           "echo one > logs/1.txt; echo two > logs/2.txt; echo no > logs/x.log; "
           "echo top > bench.json; echo skip > other.json; "
           "rm -f latest; ln -s results/sub latest; ln -sf /etc/passwd results/link")
    m.write("pods/demo/collect", "results/, logs/*.txt\nbench.json\n./latest\n")
    assert m.read("pods/demo/collect") == "results\nlogs/*.txt\nbench.json\nlatest\n"
    pid = m.read("pods/demo/id").strip()
    os.rmdir(m.p("pods/demo"))
    assert "demo" not in os.listdir(m.p("pods"))
    h = history_dir(m, pid)
    assert h, os.listdir(m.p("history"))
    files = os.path.join(h, "files")
    assert tree(files) == {"results/a.json": "42\n", "results/sub/b.txt": "deep\n",
                           "logs/1.txt": "one\n", "logs/2.txt": "two\n",
                           "bench.json": "top\n", "latest/b.txt": "deep\n"}, m.log()
    # A link the list names is followed; one under it is not.
    assert "results/link was not brought back: not a regular file" in m.log()
    st = os.stat(os.path.join(files, "results/a.json"))
    assert st.st_size == 3 and not st.st_mode & 0o222
    assert err_of(lambda: open(os.path.join(files, "results/a.json"), "w")) in (
        errno.EACCES, errno.EROFS, errno.EPERM)
    # The same files, kept in the state directory, mode 0600.
    kept = m.state / "files" / pid / "results" / "a.json"
    assert kept.read_text() == "42\n" and kept.stat().st_mode & 0o777 == 0o600
    # A tool that copies a tree gets it whole.
    out = m.dir + "/copy"
    subprocess.run(["cp", "-r", files, out], check=True)
    assert tree(out) == tree(files)


def test_deadline_guard_collects_before_terminating(cm):
    m = cm()
    run(m, "rm -rf results; mkdir -p results; echo 7 > results/r.txt")
    pid = m.read("pods/demo/id").strip()
    m.write("pods/demo/collect", "results/\n")
    m.write("pods/demo/deadline", "+2s\n")
    assert wait_for(lambda: "demo" not in os.listdir(m.p("pods"))), m.log()
    assert wait_for(lambda: history_dir(m, pid))
    assert tree(os.path.join(history_dir(m, pid), "files")) == {"results/r.txt": "7\n"}, m.log()
    assert "deadline guard" in m.log()


def test_template_collect_and_remount(cm, tmp_path):
    """The template's collect is set at mkdir; what came back is still
    shown after a remount."""
    m = cm()
    m.write("config", "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\ncollect = out/*.json\n")
    os.mkdir(m.p("pods/tpl"))
    assert m.read("pods/tpl/collect") == "out/*.json\n"
    run(m, "rm -rf out; mkdir -p out; echo '{}' > out/r.json; echo x > out/r.txt", pod="tpl")
    pid = m.read("pods/tpl/id").strip()
    os.rmdir(m.p("pods/tpl"))
    want = {"out/r.json": "{}\n"}
    assert tree(os.path.join(history_dir(m, pid), "files")) == want, m.log()
    m.stop()
    m2 = cm()
    assert wait_for(lambda: history_dir(m2, pid))
    assert tree(os.path.join(history_dir(m2, pid), "files")) == want


def test_past_collect_max_the_pod_goes_all_the_same(cm):
    m = cm("collect_max=1")
    run(m, "rm -rf big; mkdir -p big; head -c 600000 /dev/zero > big/a.bin; "
           "head -c 600000 /dev/zero > big/b.bin; echo small > big/c.txt")
    pid = m.read("pods/demo/id").strip()
    m.write("pods/demo/collect", "big/\n")
    os.rmdir(m.p("pods/demo"))
    assert "demo" not in os.listdir(m.p("pods"))
    files = os.path.join(history_dir(m, pid), "files", "big")
    got = sorted(os.listdir(files))
    # One of the two big files fits in 1 MiB, the other does not: never a
    # part of one.
    assert "c.txt" in got and len([f for f in got if f.endswith(".bin")]) == 1, got
    for f in got:
        if f.endswith(".bin"):
            assert os.stat(os.path.join(files, f)).st_size == 600000
    left = [f for f in ("a.bin", "b.bin") if f not in got][0]
    assert f"big/{left} was not brought back: collect_max" in m.log()
    assert not os.listdir(m.state / "files" / ".tmp")
    assert [r for r in m.api.requests() if r["method"] == "DELETE"]


def test_unreachable_pod_is_terminated_at_once(cm, pod):
    m = cm("collect_timeout=600")
    run(m, "mkdir -p results; echo 1 > results/a")
    pid = m.read("pods/demo/id").strip()
    m.write("pods/demo/collect", "results/\n")
    pod.kill()
    t0 = time.time()
    os.rmdir(m.p("pods/demo"))
    assert time.time() - t0 < HANG  # not collect_timeout: did not wait
    assert "demo" not in os.listdir(m.p("pods"))
    assert "cannot be reached" in m.log() or "could not be reached" in m.log(), m.log()
    h = history_dir(m, pid)
    assert h and tree(os.path.join(h, "files")) == {}


def test_collect_timeout_ends_the_wait(cm, pod):
    """A pod that stops answering: collecting gives up at collect_timeout,
    names what it did not bring back, and the pod goes all the same."""
    m = cm("collect_timeout=3")
    run(m, "mkdir -p results; echo 1 > results/a")
    pid = m.read("pods/demo/id").strip()
    m.write("pods/demo/collect", "results/\nmore.json\n")
    pod.freeze()
    try:
        os.rmdir(m.p("pods/demo"))
        assert "demo" not in os.listdir(m.p("pods"))
        log = m.log()
        assert "results was not brought back: collect_timeout passed" in log, log
        assert "more.json was not brought back: collect_timeout passed" in log, log
        assert tree(os.path.join(history_dir(m, pid), "files")) == {}
        assert not os.listdir(m.state / "files" / ".tmp")
    finally:
        pod.thaw()


@pytest.mark.parametrize("text", ["/etc\n", "../x\n", "results/../../x\n"])
def test_absolute_or_dotdot_is_einval(cm, text):
    m = cm()
    assert err_of(lambda: m.write("pods/demo/collect", text)) == errno.EINVAL
    assert m.read("pods/demo/collect") == "\n"
    assert "refused" in m.log()


def test_template_refuses_a_bad_collect(cm):
    m = cm()
    assert err_of(lambda: m.write("config", "collect = /etc\n")) == errno.EINVAL


def test_nothing_collected_when_empty(cm):
    m = cm()
    pid = m.read("pods/demo/id").strip()
    os.rmdir(m.p("pods/demo"))
    assert os.listdir(os.path.join(history_dir(m, pid), "files")) == []
    assert "collect" not in m.log()


def test_placeholder_collect_becomes_the_pods(make_api, make_mount, tmp_path):
    """A placeholder (its create's answer lost) has the template's collect
    under its name; the listing that shows the pod moves it to the pod's
    id, in the state directory too."""
    from test_placeholders import TEMPLATE, lost_answer, poll, settle
    from test_never_twice import wait_listed
    api = make_api("--pending-secs", "0", "--install-secs", "0")
    state = tmp_path / "state"
    m = make_mount(api, options=(f"state={state}",))
    m.write("config", TEMPLATE + "collect = results/\n")
    lost_answer(api, 4.0)
    assert err_of(lambda: os.mkdir(m.p("pods", "ph"))) in (errno.EIO, errno.ETIMEDOUT)
    assert m.read("pods/ph/collect") == "results\n"
    assert (state / "collect" / "ph").read_text() == "results\n"
    pod = wait_listed(api, "ph")
    assert poll(lambda: settle(m, "ph"), "listed") == pod["id"]
    assert m.read("pods/ph/collect") == "results\n"
    assert (state / "collect" / pod["id"]).read_text() == "results\n"
    assert not (state / "collect" / "ph").exists()


def test_a_retried_termination_brings_back_once(cm):
    """The DELETE fails (the API's 500s): a guard retries it, but what was
    brought back is not copied again for each try."""
    m = cm("timeout=1")
    run(m, "rm -rf results; mkdir -p results; echo 5 > results/r.txt")
    pid = m.read("pods/demo/id").strip()
    m.write("pods/demo/collect", "results/\n")
    m.api.fault(kind="500", match="DELETE /pods", count=6)
    m.write("pods/demo/deadline", "+1s\n")
    assert wait_for(lambda: "demo" not in os.listdir(m.p("pods"))), m.log()
    assert "trying again" in m.log()
    assert m.log().count("bringing back what pod demo's collect names") == 1, m.log()
    assert tree(os.path.join(history_dir(m, pid), "files")) == {"results/r.txt": "5\n"}


def test_collect_while_home_is_in_use(cm):
    """The pool takes one SFTP client per pod: with the pod's home in use
    through the mount (its client attached), collect borrows that client
    instead of being refused one, and brings the files back."""
    m = cm()
    run(m, "rm -rf results; mkdir -p results; echo 7 > results/r.txt")
    assert os.listdir(m.p("pods/demo/home/results")) == ["r.txt"]
    with open(m.p("pods/demo/home/results/r.txt")) as f:  # held open
        assert f.read() == "7\n"
        m.write("pods/demo/collect", "results/\n")
        pid = m.read("pods/demo/id").strip()
        os.rmdir(m.p("pods/demo"))
    files = os.path.join(history_dir(m, pid), "files")
    assert tree(files) == {"results/r.txt": "7\n"}, m.log()
