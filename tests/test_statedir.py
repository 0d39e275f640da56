"""The state directory (DESIGN.md "Command line"): it must be the mounting
user's and writable by nobody else, or the mount is refused; primefs makes
its files there 0600 and its directories 0700, never follows a symlink in
it, and a guard or job record it cannot keep (a full disk) fails with that
errno, changes nothing, and is logged."""

import errno
import os
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import err_of

HANG = 20  # seconds: only catches a hang


def wait_for(fn, limit=HANG):
    end = time.time() + limit
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.05)
    return False


def add(api, name, **kw):
    return api.admin("pods", {"add": [dict(name=name, **kw)]})["added"][0]


def refused(make_mount, api, state):
    with pytest.raises(RuntimeError) as e:
        make_mount(api, options=(f"state={state}",))
    return str(e.value)


def private_dir(path):
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)
    return path


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_a_state_dir_others_may_write_is_refused(api, make_mount, tmp_path, mode):
    state = private_dir(tmp_path / "state")
    os.chmod(state, mode)
    msg = refused(make_mount, api, state)
    assert "refusing state directory" in msg and "others may write" in msg, msg
    assert "%04o" % mode in msg, msg
    # Given as a link, the directory it leads to is the one judged.
    link = tmp_path / "link"
    os.symlink(state, link)
    msg = refused(make_mount, api, link)
    assert "others may write" in msg and str(state) in msg, msg
    # The same directory made private: accepted, through the link too.
    os.chmod(state, 0o700)
    m = make_mount(api, options=(f"state={link}",))
    assert os.path.isdir(state / "guards") and os.path.isdir(state / "jobs")


def test_a_state_dir_of_another_user_is_refused(api, make_mount, tmp_path):
    state = private_dir(tmp_path / "state")
    os.chown(state, 65534, 65534)
    msg = refused(make_mount, api, state)
    assert "belongs to another user" in msg and "uid 65534" in msg, msg
    assert not os.listdir(state)  # nothing was made in it


def test_files_are_0600_and_directories_0700(make_api, make_mount, pod, keys,
                                             tmp_path):
    api = make_api("--ssh", f"root@127.0.0.1:{pod.port}")
    state = tmp_path / "state"  # made by primefs
    old = os.umask(0o022)
    try:
        m = make_mount(api, options=(f"state={state}", f"ssh_key={keys[0]}",
                                     f"known_hosts={tmp_path / 'kh' / 'known_hosts'}",
                                     "ready_timeout=20", "timeout=5"))
    finally:
        os.umask(old)
    m.write("pods/demo/deadline", "+2h\n")
    m.write("pods/demo/run", "echo hi\n")
    assert m.read("pods/demo/exit") == "0\n"
    os.mkdir(m.p("pods/demo/jobs/train"))
    seen = {"dirs": 0, "files": 0}
    for top in (state, tmp_path / "kh"):
        for d, dirs, files in os.walk(top):
            assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700, d
            seen["dirs"] += 1
            for f in files:
                p = os.path.join(d, f)
                assert stat.S_IMODE(os.lstat(p).st_mode) == 0o600, p
                seen["files"] += 1
    assert os.listdir(state / "guards")  # the guard's file was among them
    assert seen["files"] >= 6  # guard, cmd/out/meta, train's out/meta, known_hosts


def test_a_planted_link_to_a_job_output_is_never_written_through(
        make_api, make_mount, pod, keys, tmp_path):
    """jobs_keep drops the oldest output by rewriting its `out`: one replaced
    by a link to a file outside must not truncate that file."""
    api = make_api("--ssh", f"root@127.0.0.1:{pod.port}")
    state = tmp_path / "state"
    m = make_mount(api, options=(f"state={state}", f"ssh_key={keys[0]}",
                                 f"known_hosts={tmp_path / 'known_hosts'}",
                                 "ready_timeout=20", "timeout=5",
                                 "jobs_keep=0.002"))  # about 2 KiB
    m.write("pods/demo/run", "head -c 1500 /dev/zero | tr '\\0' a; echo\n")
    assert m.read("pods/demo/exit") == "0\n"
    pid = m.read("pods/demo/id").strip()
    out1 = state / "jobs" / pid / "1" / "out"
    outside = tmp_path / "precious"
    outside.write_bytes(b"p" * 1500)
    os.unlink(out1)
    os.symlink(outside, out1)
    # Over the cap now: job 1, the oldest, would be dropped first.
    m.write("pods/demo/run", "head -c 2500 /dev/zero | tr '\\0' b; echo\n")
    assert m.read("pods/demo/exit") == "0\n"
    assert wait_for(lambda: "output dropped" in m.log()), m.log()
    assert outside.read_bytes() == b"p" * 1500
    assert os.path.islink(out1)
    assert "cannot drop the output" in m.log(), m.log()


def test_a_planted_link_in_the_guards_is_never_written_through(api, make_mount,
                                                               tmp_path):
    pid = add(api, "gx")
    state = tmp_path / "state"
    m = make_mount(api, options=(f"state={state}",))
    m.write("pods/gx/deadline", "+1h\n")
    guards = state / "guards"
    outside = tmp_path / "precious"
    outside.write_text("keep\n")
    # The guard's file and the names a writer might put beside it.
    for name in (pid, pid + ".tmp", "." + pid + ".tmp"):
        if os.path.lexists(guards / name):
            os.unlink(guards / name)
        os.symlink(outside, guards / name)
    m.write("pods/gx/deadline", "+2h\n")
    m.write("pods/gx/idle", "30m\n")
    assert outside.read_text() == "keep\n"
    st = os.lstat(guards / pid)  # replaced by a file of primefs's own
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert "idle 1800" in (guards / pid).read_text()


def test_a_planted_link_for_the_guards_directory_is_not_followed(api, make_mount,
                                                                 tmp_path):
    add(api, "gy")
    state = private_dir(tmp_path / "state")
    elsewhere = private_dir(tmp_path / "elsewhere")
    os.symlink(elsewhere, state / "guards")
    m = make_mount(api, options=(f"state={state}",))
    e = err_of(lambda: m.write("pods/gy/deadline", "+1h\n"))
    assert e in (errno.ELOOP, errno.ENOTDIR), e
    assert os.listdir(elsewhere) == []
    assert m.read("pods/gy/deadline") == "\n"  # not armed
    assert "cannot keep guards" in m.log(), m.log()


def test_a_planted_link_for_the_jobs_directory_refuses_the_mount(api, make_mount,
                                                                 tmp_path):
    state = private_dir(tmp_path / "state")
    elsewhere = private_dir(tmp_path / "elsewhere")
    os.symlink(elsewhere, state / "jobs")
    msg = refused(make_mount, api, state)
    assert "cannot keep jobs in" in msg, msg
    assert os.listdir(elsewhere) == []


@pytest.fixture
def small_tmpfs():
    d = tempfile.mkdtemp(prefix="primefs-full.")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", d],
                   check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", d])
        os.rmdir(d)


def fill(d):
    with open(os.path.join(d, "filler"), "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC


def test_a_full_state_disk_fails_the_write_and_changes_nothing(api, make_mount,
                                                               small_tmpfs):
    add(api, "x")
    state = os.path.join(small_tmpfs, "state")
    m = make_mount(api, options=(f"state={state}",))
    try:
        m.write("pods/x/deadline", "+1h\n")
        before = m.read("pods/x/guards")
        assert "deadline: terminates at" in before
        fill(small_tmpfs)
        # The guard is stored at the write that ends its line (and at
        # close): bash's builtin echo, which ignores a failed close, sees
        # it; so does coreutils' echo.
        for echo in ("echo", "/bin/echo"):
            r = subprocess.run(["bash", "-c", f'{echo} 2h > "$1"', "-", m.p("pods/x/deadline")],
                               capture_output=True, text=True, timeout=HANG)
            assert r.returncode != 0 and "No space left on device" in r.stderr, (echo, r)
        assert err_of(lambda: m.write("pods/x/deadline", "3h\n")) == errno.ENOSPC
        assert m.read("pods/x/guards") == before
        assert "cannot be kept" in m.log() and "No space left on device" in m.log(), m.log()
        # A guard not armed before stays unarmed.
        assert err_of(lambda: m.write("pods/x/idle", "30m\n")) == errno.ENOSPC
        assert m.read("pods/x/idle") == "\n"
        # A job's record that cannot be kept: no job.
        assert err_of(lambda: os.mkdir(m.p("pods/x/jobs/train"))) == errno.ENOSPC
        assert "train" not in os.listdir(m.p("pods/x/jobs"))
        # Room again: the same write works.
        os.unlink(os.path.join(small_tmpfs, "filler"))
        m.write("pods/x/deadline", "2h\n")
        assert m.read("pods/x/guards") != before
    finally:
        m.stop()
