"""The SSH runner (src/ssh/) against real sshds: build/tests/unit/test_ssh
runs one scenario per test and prints TAP; this file starts the pods (sshd,
see sshd.py), does what the scenario asks of them mid-run ("@@ kill",
"@@ restart", "@@ rekey") and checks sshd's side of the story (its log, files
a refused command would have made).

PRIMEFS_BUILD picks the build (the ASan one runs test_ssh under ASan);
PRIMEFS_WRAPPER (e.g. valgrind) wraps test_ssh.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import BUILD
from sshd import Sshd, descendants, free_port, make_key, silent_listener

EXE = BUILD / "tests" / "unit" / "test_ssh"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="sshd needs root"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/sshd"), reason="no OpenSSH server"),
]


def wrapped():
    return shlex.split(os.environ.get("PRIMEFS_WRAPPER", ""))


class Run:
    def __init__(self, rc, stdout, stderr):
        self.rc, self.stdout, self.stderr = rc, stdout, stderr
        self.values = {}
        for line in stdout.splitlines():
            m = re.match(r"# (\w+) ([-\d.]+)$", line)
            if m:
                self.values.setdefault(m.group(1), []).append(float(m.group(2)))

    def value(self, name):
        return self.values[name][0]

    def check(self):
        out = self.stdout[-6000:] + "\n--- stderr:\n" + self.stderr[-6000:]
        assert "not ok" not in self.stdout, out
        assert "\nok " in "\n" + self.stdout, out
        assert "ERROR: AddressSanitizer" not in self.stderr, out
        assert "runtime error:" not in self.stderr, out
        assert "LeakSanitizer" not in self.stderr, out
        assert self.rc == 0, "exit %s\n%s" % (self.rc, out)
        return self


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    ed, ed_pub = make_key(d, "ed25519")
    rsa, rsa_pub = make_key(d, "rsa")
    other, _ = make_key(d, "ed25519", name="id_other")
    return {"ed": ed, "ed_pub": ed_pub, "rsa": rsa, "rsa_pub": rsa_pub, "other": other}


@pytest.fixture
def pods(tmp_path, keys):
    """Makes sshds that accept the test's ed25519 and RSA keys."""
    made = []

    def make(name="a", **kw):
        s = Sshd(tmp_path / ("sshd-" + name), authorized_keys=[keys["ed_pub"], keys["rsa_pub"]], **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def run(scenario, sshd, tmp_path, keys, actions=None, extra=(), timeout=60, env=None):
    """Runs one scenario of test_ssh; `actions` answers its "@@ NAME" lines."""
    assert EXE.exists(), f"{EXE} not built"
    cmd = wrapped() + [
        str(EXE), scenario, "host=127.0.0.1", f"port={sshd.port}", "user=root",
        f"key={keys['ed']}", f"known_hosts={tmp_path / 'known_hosts'}", f"dir={tmp_path}",
        *extra]
    if wrapped():
        timeout *= 4
    err = open(tmp_path / f"{scenario}.stderr", "w+")
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                         text=True, env=env)
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    lines = []
    try:
        for line in p.stdout:
            lines.append(line)
            if line.startswith("@@ "):
                (actions or {})[line[3:].strip()]()
                p.stdin.write("done\n")
                p.stdin.flush()
        rc = p.wait()
    finally:
        killer.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
    err.seek(0)
    return Run(rc, "".join(lines), err.read())


def accepted(log):
    return len(re.findall(r"Accepted publickey for root", log))


def test_basic(pods, tmp_path, keys):
    a = pods()
    r = run("basic", a, tmp_path, keys).check()
    # Every command of the run went over the one session.
    assert accepted(a.log_text()) == 1, a.log_text()
    assert a.log_text().count("Starting session: command") == 6
    print("first run %.1f ms, `true` %.1f ms" % (r.value("first_run_ms"), r.value("true_ms")))


def test_interleave(pods, tmp_path, keys):
    run("interleave", pods(), tmp_path, keys).check()


def test_big_stdout_and_stderr(pods, tmp_path, keys):
    r = run("big", pods(), tmp_path, keys).check()
    assert r.value("bytes") == 8000000


def test_streaming(pods, tmp_path, keys):
    run("stream", pods(), tmp_path, keys).check()


def test_concurrent_on_one_session(pods, tmp_path, keys):
    a = pods()
    run("concurrent", a, tmp_path, keys).check()
    assert accepted(a.log_text()) == 1


def test_pods_independent(pods, tmp_path, keys):
    a, b = pods("a"), pods("b")
    stall = silent_listener()
    try:
        r = run("pods", a, tmp_path, keys,
                extra=[f"port_b={b.port}", f"stall_port={stall.getsockname()[1]}", "timeout=10"])
    finally:
        stall.close()
    r.check()  # pod B answered while pod S still hung in its handshake


def test_host_key_learned_then_change_refused(pods, tmp_path, keys):
    a = pods()
    kh = tmp_path / "known_hosts"
    before = {}

    def rekey():
        openssh = subprocess.run(
            ["ssh", "-i", keys["ed"], "-p", str(a.port), "-o", "BatchMode=yes",
             "-o", "HostKeyAlias=pod-a", "-o", f"UserKnownHostsFile={kh}",
             "-o", "StrictHostKeyChecking=yes", "root@127.0.0.1", "echo openssh"],
            capture_output=True, text=True, timeout=20)
        assert openssh.stdout == "openssh\n", openssh.stderr
        before["log"] = len(a.log_text())
        a.restart(new_host_key=True)

    r = run("hostkey", a, tmp_path, keys, actions={"rekey": rekey})
    r.check()
    # Recorded under the pod's id, as ssh's HostKeyAlias does: OpenSSH
    # trusts the file as it is.
    assert kh.read_text().startswith("pod-a ssh-ed25519 "), kh.read_text()
    assert "[127.0.0.1]" not in kh.read_text()
    # Nothing was sent after the handshake: no auth, no command.
    after = a.log_text()[before["log"]:]
    assert "Accepted publickey" not in after, after
    assert "Postponed publickey" not in after, after
    assert "Starting session" not in after, after
    assert not (tmp_path / "hostkey-marker").exists()
    assert "HOST KEY CHANGED" in r.stderr


def test_known_hosts_hashed_and_unparsable_lines(pods, tmp_path, keys):
    a = pods()
    # The pod's line as ssh writes it with HostKeyAlias and HashKnownHosts.
    hashed = tmp_path / "hashed"
    hashed.write_text("pod-a " + a.host_key_pub() + "\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(hashed)], check=True,
                   capture_output=True)
    scan = hashed.read_text()
    assert scan.startswith("|1|"), scan
    kh = tmp_path / "known_hosts"
    kh.write_text("# a comment\n"
                  "@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE\n"
                  "other.example.com sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5\n"
                  + scan)
    run("known", a, tmp_path, keys, extra=["expect=match"]).check()
    assert kh.read_text().endswith(scan), "a known host was learned again"
    assert accepted(a.log_text()) == 1


def test_known_by_another_key_type_refused(pods, tmp_path, keys):
    a = pods()
    _, other_host_key = make_key(tmp_path, "ecdsa", name="other_host_key")
    kind, blob = other_host_key.split()[:2]
    (tmp_path / "known_hosts").write_text(f"pod-a {kind} {blob}\n")
    run("known", a, tmp_path, keys, extra=["expect=refused"]).check()
    assert accepted(a.log_text()) == 0


def test_recycled_address_new_pod_accepted_old_pod_refused(pods, tmp_path, keys):
    """Providers recycle addresses: host keys are per pod, not per address."""
    a = pods()
    kh = tmp_path / "known_hosts"
    before = {}

    def recycle():
        a.stop()
        a.restart(new_host_key=True)  # another "pod" on the same port
        before["log"] = len(a.log_text())

    run("recycle", a, tmp_path, keys, actions={"recycle": recycle}).check()
    lines = kh.read_text().splitlines()
    names = [l.split()[0] for l in lines]
    assert names == ["pod-old", "pod-new"], lines
    assert lines[0].split()[2] != lines[1].split()[2]
    after = a.log_text()[before["log"]:]
    assert accepted(after) == 1, after  # pod-new's; pod-old's try sent nothing
    assert after.count("Starting session: command") == 1, after
    assert not (tmp_path / "recycle-marker").exists()


def test_abandoned_command_never_starts(pods, tmp_path, keys):
    """ssh_run interrupted while the frozen pod has not yet opened the
    command's channel: once the pod wakes, the command is not run."""
    a = pods()
    try:
        run("abandon", a, tmp_path, keys,
            actions={"freeze": a.freeze, "thaw": a.thaw}).check()
    finally:
        a.thaw()
    time.sleep(0.5)
    assert not (tmp_path / "abandon-marker").exists()
    # `true` and `echo after` only.
    assert a.log_text().count("Starting session: command") == 2, a.log_text()


def test_frozen_pod_noticed_by_keepalives(pods, tmp_path, keys):
    """A host that hangs keeps the TCP connection (its kernel still
    acknowledges): the running command ends as lost within some keepalive
    intervals, not never."""
    a = pods()
    try:
        r = run("frozen", a, tmp_path, keys, extra=["keepalive=2"],
                actions={"freeze": a.freeze, "thaw": a.thaw}).check()
    finally:
        a.thaw()
    print("lost after %.1f s" % r.value("lost_s"))


def test_rsa_key_refused_with_the_fix(pods, tmp_path, keys):
    a = pods()
    r = run("rsa", a, tmp_path, keys, extra=[f"rsa_key={keys['rsa']}"]).check()
    assert "use an ed25519 key (ssh-keygen -t ed25519) or libssh2 >= 1.11" in r.stderr
    assert accepted(a.log_text()) == 0
    assert not (tmp_path / "rsa-marker").exists()


def test_connection_lost_and_reconnect(pods, tmp_path, keys):
    a = pods()
    r = run("lost", a, tmp_path, keys, actions={"kill": a.kill, "restart": a.start})
    r.check()
    assert r.value("lost_ms") < 5000


def test_pod_dies_during_channel_open_retried_on_a_new_session(pods, tmp_path, keys):
    """The pod's session dies (frozen, then its processes killed) while a
    command's channel opens: it runs once on a new session, never "lost twice"
    because the retry found the dying session still taking commands."""
    a = pods()

    def drop():
        # The session processes die; the listener lives on (thawed), so the
        # retry finds a pod to connect to at once.
        for pid in descendants(a.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.kill(a.proc.pid, signal.SIGCONT)

    try:
        r = run("redial", a, tmp_path, keys, actions={"freeze": a.freeze, "drop": drop},
                timeout=120)
    finally:
        a.thaw()
    r.check()


def test_unreachable(tmp_path, keys):
    stall = silent_listener()
    try:
        dummy = type("P", (), {"port": free_port()})
        r = run("unreachable", dummy, tmp_path, keys,
                extra=[f"closed_port={free_port()}", f"stall_port={stall.getsockname()[1]}"])
    finally:
        stall.close()
    r.check()


def test_output_to_file_whole(pods, tmp_path, keys):
    r = run("file", pods(), tmp_path, keys).check()
    assert r.value("total") == (70 << 20) + 4


def test_output_disk_full_never_stalls(pods, tmp_path, keys):
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(full)], check=True)
    try:
        r = run("full", pods(), tmp_path, keys, extra=[f"full={full}"]).check()
    finally:
        subprocess.run(["umount", "-l", str(full)])
    assert 0 < r.value("written") <= 1 << 20


def test_pgid_and_signal_to_the_group(pods, tmp_path, keys):
    """ssh_cmd_pgid is the job's process group (the kernel's word, from the
    pod); TERM ends `sleep 60` with "signal TERM", and a background child
    with it."""
    a = pods()
    r = run("signal", a, tmp_path, keys).check()
    assert r.value("pgid") > 0
    # The script, the kill commands (3, each through sh), the checks.
    assert "kill -s TERM" not in r.stdout


def test_session_reused(pods, tmp_path, keys):
    a = pods()
    run("reuse", a, tmp_path, keys).check()
    log = a.log_text()
    assert accepted(log) == 1, log
    assert log.count("Connection from 127.0.0.1") == 1, log
    assert log.count("Starting session: command") == 10, log


def test_watch_and_forget(pods, tmp_path, keys):
    run("watch", pods(), tmp_path, keys).check()


@pytest.mark.skipif(not shutil.which("ssh-agent"), reason="no ssh-agent")
def test_agent(pods, tmp_path, keys):
    a = pods()
    sock = str(tmp_path / "agent.sock")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        env = dict(os.environ, SSH_AUTH_SOCK=sock)
        subprocess.run(["ssh-add", "-q", keys["ed"]], env=env, check=True,
                       stderr=subprocess.DEVNULL)
        run("agent", a, tmp_path, keys, extra=[f"other_key={keys['other']}"], env=env).check()
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait()


def test_throughput(pods, tmp_path, keys):
    """256 MiB of output, on a new session then on the same one again: every
    byte arrives, and none is dropped for a reader that keeps up (the
    scenario checks both). How fast, against OpenSSH: bench/ssh_run.py."""
    a = pods()
    size = 256 << 20
    if wrapped():
        pytest.skip("256 MiB under a wrapper takes too long")
    r = run("throughput", a, tmp_path, keys, extra=[f"bytes={size}", "runs=1"]).check()
    print(f"256 MiB: {size / 1e6 / r.value('warm_s'):.0f} MB/s warm, "
          f"{size / 1e6 / r.value('cold_s'):.0f} MB/s with connect (figures only)")
