"""The SFTP client (src/ssh/sftp*.c) against a real sshd: build/tests/unit/
test_sftp runs one scenario per test and prints TAP; this file starts the
pod (sshd, see sshd.py) and does what a scenario asks of it mid-run ("@@
restart"). The pod is this machine, so the scenarios check what the client
did with local system calls.

PRIMEFS_BUILD picks the build; PRIMEFS_WRAPPER (e.g. valgrind) wraps
test_sftp.
"""

import os
import pwd
import subprocess

import pytest

from conftest import BUILD
from sshd import Sshd, free_port
from test_ssh_core import Run, keys, wrapped  # noqa: F401 (keys: fixture)

EXE = BUILD / "tests" / "unit" / "test_sftp"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="sshd needs root"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/sshd"), reason="no OpenSSH server"),
]


@pytest.fixture
def pod(tmp_path, keys):  # noqa: F811
    s = Sshd(tmp_path / "sshd", authorized_keys=[keys["ed_pub"]])
    yield s
    s.stop()


def run(scenario, sshd, tmp_path, keys, actions=None, extra=(), timeout=120, env=None):  # noqa: F811
    assert EXE.exists(), f"{EXE} not built"
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    cmd = wrapped() + [
        str(EXE), scenario, "host=127.0.0.1", f"port={sshd.port}", "user=root",
        f"key={keys['ed']}", f"known_hosts={tmp_path / 'known_hosts'}", f"dir={work}",
        f"home={pwd.getpwuid(0).pw_dir}", *extra]
    if wrapped():
        timeout *= 4
    err = open(tmp_path / f"{scenario}.stderr", "w+")
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                         text=True, env=env)
    lines = []
    try:
        for line in p.stdout:
            lines.append(line)
            if line.startswith("@@ "):
                (actions or {})[line[3:].strip()]()
                p.stdin.write("done\n")
                p.stdin.flush()
        rc = p.wait(timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err.seek(0)
    return Run(rc, "".join(lines), err.read())


def test_every_operation(pod, tmp_path, keys):  # noqa: F811
    run("ops", pod, tmp_path, keys).check()
    log = pod.log_text()
    # On the pod's one session, in its sftp subsystem: no second login.
    assert log.count("Accepted publickey") == 1, log
    assert "Starting session: subsystem 'sftp'" in log, log


def test_errno(pod, tmp_path, keys):  # noqa: F811
    run("errors", pod, tmp_path, keys).check()


def test_disk_full_is_enospc(pod, tmp_path, keys):  # noqa: F811
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(full)], check=True)
    try:
        run("full", pod, tmp_path, keys, extra=[f"full={full}"]).check()
    finally:
        subprocess.run(["umount", "-l", str(full)])


def test_256mib_bounded_memory(pod, tmp_path, keys):  # noqa: F811
    if wrapped():
        pytest.skip("256 MiB under a wrapper takes too long")
    # ASan keeps freed memory in quarantine (256 MiB by default), which
    # the peak RSS would count.
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "")
               + ":quarantine_size_mb=1")
    r = run("big", pod, tmp_path, keys, timeout=600, env=env).check()
    mb = 256 * 1.048576
    print(f"256 MiB: write {mb / r.value('write_s'):.0f} MB/s, read "
          f"{mb / r.value('read_s'):.0f} MB/s, peak RSS +{r.value('hwm_growth_kib') / 1024:.0f} "
          "MiB (figures only; bench/sftp.py compares)")


def test_reconnect_mid_read(pod, tmp_path, keys):  # noqa: F811
    r = run("reconnect", pod, tmp_path, keys, actions={"restart": pod.restart}).check()
    # A second login after the restart, from the read that went on.
    assert pod.log_text().count("Accepted publickey") == 2, pod.log_text()
    assert "changed on the pod" in r.stderr


def test_many_threads_one_channel(pod, tmp_path, keys):  # noqa: F811
    run("concurrent", pod, tmp_path, keys).check()
    assert pod.log_text().count("Accepted publickey") == 1


def test_unreachable_pod(tmp_path, keys):  # noqa: F811
    dummy = type("P", (), {"port": free_port()})
    run("unreachable", dummy, tmp_path, keys, extra=[f"closed_port={free_port()}"]).check()


def test_interrupted_wait(pod, tmp_path, keys):  # noqa: F811
    try:
        r = run("interrupt", pod, tmp_path, keys,
                actions={"freeze": pod.freeze, "thaw": pod.thaw}).check()
    finally:
        pod.thaw()
    print("interrupted after %.2f s" % r.value("intr_s"))


def test_files_and_a_job_on_one_session(pod, tmp_path, keys):  # noqa: F811
    run("mixed", pod, tmp_path, keys).check()
    log = pod.log_text()
    assert log.count("Accepted publickey") == 1, log
    assert "Starting session: subsystem 'sftp'" in log, log
    assert "Starting session: command" in log, log


def test_upload_and_download_at_once(pod, tmp_path, keys):  # noqa: F811
    run("duplex", pod, tmp_path, keys, timeout=300).check()


def test_one_file_read_by_many_threads_and_out_of_order(pod, tmp_path, keys):  # noqa: F811
    run("parallel", pod, tmp_path, keys, timeout=300).check()


def test_sshd_restarts_under_many_threads(pod, tmp_path, keys):  # noqa: F811
    r = run("chaos", pod, tmp_path, keys, actions={"restart": pod.restart},
            timeout=300).check()
    assert pod.log_text().count("Accepted publickey") >= 2
    print("%d calls; stderr:\n%s" % (r.value("ops"), r.stderr[-1500:]))
