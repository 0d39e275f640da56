"""Jobs on a real mount with a real sshd: everything written to `run`
between open and close is one job, a script run whole by the user's shell
with an empty stdin and stderr merged into stdout; scripts over 1 MiB are
refused; rmdir of the pod ends its readers at once (DESIGN.md "Jobs")."""

import errno
import os
import pwd
import shutil
import subprocess
import threading
import time

import pytest

from conftest import err_of, read_to_eof
from sshd import Sshd

MIB = 1 << 20



def job(m, *chunks, pod="demo"):
    """One open, a write() per chunk, one close."""
    fd = os.open(m.p("pods", pod, "run"), os.O_WRONLY)
    try:
        for c in chunks:
            assert os.write(fd, c) == len(c)
    finally:
        os.close(fd)


def commands(m):
    return m.stats()["ssh_commands"]


def read_bounded(path, timeout=30):
    """cat path, in a child process with a hang bound."""
    r = subprocess.run(["cat", path], capture_output=True, timeout=timeout)
    return r.stdout


def test_printf_with_two_lines_is_one_job(rig):
    before = commands(rig)
    subprocess.run(["bash", "-c", f"printf 'echo A\\necho B\\n' > {rig.p('pods/demo/run')}"],
                   check=True, timeout=30)
    assert rig.read("pods/demo/run") == "A\nB\n"
    assert rig.read("pods/demo/exit") == "0\n"
    assert commands(rig) == before + 1


def test_writes_of_any_size_make_one_job(rig):
    before = commands(rig)
    job(rig, b"echo hel", b"lo\n", b"echo B; exit 4\n")
    assert rig.read("pods/demo/run") == "hello\nB\n"
    assert rig.read("pods/demo/exit") == "4\n"
    assert commands(rig) == before + 1


def test_nothing_written_starts_nothing(rig):
    before = commands(rig)
    job(rig)
    assert commands(rig) == before


def test_200k_script_runs_whole(rig):
    line = b": a comment line that only pads the script out a little\n"
    script = line * (200 * 1024 // len(line)) + b"echo done\n"
    assert len(script) > 200 * 1024
    job(rig, script)
    assert rig.read("pods/demo/run") == "done\n"
    assert rig.read("pods/demo/exit") == "0\n"


def test_1mib_runs_and_more_is_e2big_with_nothing_sent(rig, tmp_path):
    marker = tmp_path / "marker"
    head = f"touch {marker}\n".encode()
    tail = b"echo done\n"
    pad = MIB - len(head) - len(tail)
    exact = head + b"#" * (pad - 1) + b"\n" + tail
    assert len(exact) == MIB
    job(rig, exact)
    assert rig.read("pods/demo/run") == "done\n"
    assert marker.exists()
    marker.unlink()

    before = commands(rig)
    over = head + b"#" * pad + b"\n" + tail
    assert len(over) == MIB + 1
    assert err_of(lambda: job(rig, over)) == errno.E2BIG
    time.sleep(0.5)
    assert not marker.exists()
    assert commands(rig) == before
    assert "nothing was sent" in rig.log()
    # The handle's refusal does not stick to the next job.
    job(rig, b"echo next\n")
    assert rig.read("pods/demo/run") == "next\n"


def test_stdin_is_at_eof(rig):
    job(rig, b'read x; echo "rc=$? x=$x"\n')
    assert read_bounded(rig.p("pods/demo/run")) == b"rc=1 x=\n"


def test_stderr_merged_in_order(rig):
    job(rig, b"echo out; echo err >&2; echo out2\n")
    assert rig.read("pods/demo/run") == "out\nerr\nout2\n"
    job(rig, b"for i in $(seq 300); do echo o$i; echo e$i >&2; done\n")
    want = "".join(f"o{i}\ne{i}\n" for i in range(1, 301))
    assert rig.read("pods/demo/run") == want


def test_script_text_is_not_mangled(rig):
    # No final newline; quotes, backslashes, a heredoc with trailing blank
    # lines, and bytes that are not UTF-8.
    script = (b"cat <<'EOF'\n'\"$x\\n`\n\n\nEOF\n"
              b"printf '%s' \"$(printf '\\377\\001')\" | od -An -tx1 | tr -d ' \\n'; echo\n"
              b"printf end")
    # A short script rides in the exec request, a long one goes to the
    # wrapper's stdin: both as they are.
    for pad in (b"", b"#" + b"-" * 3000 + b"\n"):
        job(rig, pad + script)
        with open(rig.p("pods/demo/run"), "rb") as f:
            assert f.read() == b"'\"$x\\n`\n\n\nff01\nend"
    # A heredoc that ends the script, with blank lines last.
    for pad in (b"", b"#" + b"-" * 3000 + b"\n"):
        job(rig, pad + b"cat <<'EOF'\n%%\\0\n\n\nEOF")
        with open(rig.p("pods/demo/run"), "rb") as f:
            assert f.read() == b"%%\\0\n\n\n"


def test_run_by_the_users_shell_in_its_own_session(rig):
    shell = os.path.realpath(pwd.getpwnam("root").pw_shell)
    job(rig, b'readlink /proc/$$/exe\nset -- $(sed "s/.*) //" /proc/$$/stat)\n'
             b'echo "$$ $3 $4"\n')
    exe, ids = rig.read("pods/demo/run").splitlines()
    assert exe == shell
    pid, pgid, sid = ids.split()
    assert pid == pgid == sid


def test_concurrent_read_write_handles_read_their_own_jobs(rig):
    results = {}

    def one(i):
        fd = os.open(rig.p("pods/demo/run"), os.O_RDWR)
        try:
            os.write(fd, f"echo start{i}; sleep 0.{i}\n".encode())
            os.write(fd, f"echo job{i}\nexit {i}\n".encode())
            results[i] = read_to_eof(fd)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {i: f"start{i}\njob{i}\n".encode() for i in range(1, 5)}
    assert rig.read("pods/demo/exit") in {f"{i}\n" for i in range(1, 5)}


def test_rmdir_never_waits_and_ends_readers(rig):
    rig.write("config", "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    os.mkdir(rig.p("pods/gone"))
    job(rig, b"echo started; sleep 60\n", pod="gone")
    run_reader = subprocess.Popen(["cat", rig.p("pods/gone/run")], stdout=subprocess.PIPE)
    exit_reader = subprocess.Popen(["cat", rig.p("pods/gone/exit")], stdout=subprocess.PIPE)
    job_reader = subprocess.Popen(["cat", rig.p("pods/gone/jobs/1/exit")],
                                  stdout=subprocess.PIPE)
    try:
        assert run_reader.stdout.read(8) == b"started\n"
        time.sleep(0.5)  # the readers now block in the daemon
        assert exit_reader.poll() is None and job_reader.poll() is None
        rm = subprocess.Popen(["rmdir", rig.p("pods/gone")])
        assert rm.wait(timeout=3) == 0  # a hang bound: never the 60 s job
        rest, _ = run_reader.communicate(timeout=10)
        out, _ = exit_reader.communicate(timeout=10)
        job_out, _ = job_reader.communicate(timeout=10)
    finally:
        for p in (run_reader, exit_reader, job_reader):
            if p.poll() is None:
                p.kill()
    assert out == b"lost\n" and job_out == b"lost\n"
    assert b"sleep" not in rest
    assert not os.path.exists(rig.p("pods/gone"))


# The pod user's login shell, and the startup file it reads for a command
# run over SSH (bash: ~/.bashrc, since SSH_CLIENT is set; zsh: ~/.zshenv;
# dash: none).
LOGIN_SHELLS = {"bash": ".bashrc", "dash": None, "zsh": ".zshenv"}


@pytest.fixture(params=sorted(LOGIN_SHELLS))
def shell_pod(request, tmp_path, keys, make_api, make_mount):
    """A pod whose user has the given login shell: a user made for the test
    (uid 0 as a pod's root, its own name, home and shell), removed after.
    Yields (mount, shell path, ssh command line for the same user)."""
    name = request.param
    shell = shutil.which(name)
    if not shell:
        pytest.skip(f"no {name} installed")
    user = f"pfs-{name}-{os.getpid()}"
    sshd = Sshd(tmp_path / "sshd", authorized_keys=[keys[1]])
    # "*": no password, yet not locked (sshd refuses a locked account).
    subprocess.run(["useradd", "-o", "-u", "0", "-g", "0", "-M", "-d", str(sshd.home),
                    "-p", "*", "-s", shell, user], check=True, capture_output=True)
    try:
        api = make_api("--ssh", f"{user}@127.0.0.1:{sshd.port}")
        m = make_mount(api, options=(f"ssh_key={keys[0]}",
                                     f"known_hosts={tmp_path / 'known_hosts'}", "timeout=5"))
        ssh = ["ssh", "-i", keys[0], "-p", str(sshd.port), "-o", "BatchMode=yes",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", f"{user}@127.0.0.1"]
        yield m, sshd, shell, ssh, LOGIN_SHELLS[name]
    finally:
        sshd.stop()
        # -f: uid 0 is in use by other processes, which userdel holds
        # against a name that shares it.
        subprocess.run(["userdel", "-f", user], capture_output=True)


def test_a_job_starts_the_login_shell_once_as_ssh_does(shell_pod):
    """Whatever the pod user's shell, a job reads its startup file as many
    times as `ssh host cmd` does (once), short script or long, and runs
    right in it: by that shell, in its own session, stdin at EOF, stderr
    merged in order, its exit status."""
    m, sshd, shell, ssh, rc = shell_pod
    count = sshd.home / "count"
    if rc:
        (sshd.home / rc).write_text(f"echo started >> {count}\n")

    def starts(fn):
        before = count.read_text().count("started") if count.exists() else 0
        fn()
        return count.read_text().count("started") - before if count.exists() else 0

    def primefs(script):
        job(m, script)
        assert m.read("pods/demo/exit") == "0\n"

    by_ssh = starts(lambda: subprocess.run(ssh + ["true"], check=True, timeout=30))
    assert by_ssh == (1 if rc else 0)
    assert starts(lambda: primefs(b"true\n")) == by_ssh
    assert starts(lambda: primefs(b"#" * 2000 + b"\ntrue\n")) == by_ssh

    script = (b'readlink /proc/$$/exe\nset -- $(sed "s/.*) //" /proc/$$/stat)\n'
              b'echo "$$ $3 $4"\nread x; echo "read=$? x=$x"\n'
              b"echo out; echo err >&2; echo out2\nexit 3\n")
    for pad in (b"", b"#" * 2000 + b"\n"):
        job(m, pad + script)
        exe, ids, *rest = m.read("pods/demo/run").splitlines()
        assert exe == os.path.realpath(shell)
        pid, pgid, sid = ids.split()
        assert pid == pgid == sid
        assert rest == ["read=1 x=", "out", "err", "out2"]
        assert m.read("pods/demo/exit") == "3\n"


def test_a_job_starts_where_ssh_host_cmd_starts(rig, pod, keys):
    """In the pod user's home (the test sshd's, not the host's /root):
    relative paths land there."""
    r = subprocess.run(["ssh", "-i", keys[0], "-p", str(pod.port), "-o", "BatchMode=yes",
                        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                        "-o", "LogLevel=ERROR", "root@127.0.0.1", "pwd"],
                       capture_output=True, text=True, check=True, timeout=30)
    assert r.stdout == f"{pod.home}\n"
    job(rig, b"pwd; echo x > relative-file\n")
    assert rig.read("pods/demo/run") == r.stdout
    assert (pod.home / "relative-file").read_text() == "x\n"
