"""One open of `run` or `cmd` is one job, in every idiom a shell script
uses (DESIGN.md "Jobs"): FUSE sends a FLUSH at every close of a shared
open, by every process that inherited it, and one RELEASE when the last
reference goes. The job is claimed (the pod's latest, `waiting`) at the
first close after a write and its script, everything written through the
open, is sent at the last close, whoever makes it."""

import os
import signal
import socket
import subprocess
import sys
import time

from conftest import err_of


def jobs_of(m, pod="demo"):
    return sorted(n for n in os.listdir(m.p("pods", pod, "jobs")) if n != "latest")


def sh(m, script, cwd):
    r = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def one_job(m, before, pod="demo"):
    """Exactly one job more; its exit (waited for) and its output."""
    after = jobs_of(m, pod)
    assert len(after) == len(before) + 1, (before, after)
    new = (set(after) - set(before)).pop()
    d = m.p("pods", pod, "jobs", new)
    with open(os.path.join(d, "exit")) as f:
        status = f.read()
    with open(os.path.join(d, "out")) as f:
        return status, f.read()


def test_shell_idioms_each_start_one_whole_job(rig, tmp_path):
    run = rig.p("pods/demo/run")
    (tmp_path / "job.sh").write_text("echo inside\n")
    host = socket.gethostname()
    table = [
        (f"{{ echo 'echo a'; echo \"echo b=$(hostname)\"; echo 'echo c'; }} > {run}",
         f"a\nb={host}\nc\n"),
        (f"{{ echo 'echo part1'; /bin/true; echo 'echo part2'; }} > {run}",
         "part1\npart2\n"),
        (f"for i in 1 2 3; do printf 'echo %s\\n' \"$(echo n$i)\"; done > {run}",
         "n1\nn2\nn3\n"),
        (f"exec 3>{run}; echo 'echo a' >&3; echo 'echo b' >&3; exec 3>&-",
         "a\nb\n"),
        (f"{{ echo 'cd /tmp'; cat job.sh; echo 'pwd'; }} > {run}",
         "inside\n/tmp\n"),
        (f"cat > {run} <<'EOF'\necho h1\necho h2\nEOF",
         "h1\nh2\n"),
        (f"printf 'echo t1\\necho t2\\n' | tee {run} >/dev/null",
         "t1\nt2\n"),
    ]
    for script, want in table:
        before = jobs_of(rig)
        sh(rig, script, tmp_path)
        assert one_job(rig, before) == ("0\n", want), script
        # The close returned once it had started: jobs/latest is it.
        assert rig.read("pods/demo/exit") == "0\n"


def test_python_subprocess_then_write_is_one_job(rig, tmp_path):
    code = (
        "import subprocess, sys\n"
        "with open(sys.argv[1], 'w') as f:\n"
        "    subprocess.run(['echo', 'echo from-child'], stdout=f, check=True)\n"
        "    f.write('echo from-python\\n')\n")
    before = jobs_of(rig)
    subprocess.run([sys.executable, "-c", code, rig.p("pods/demo/run")],
                   check=True, timeout=60)
    assert one_job(rig, before) == ("0\n", "from-child\nfrom-python\n")


def test_two_cats_into_a_named_jobs_cmd(rig, tmp_path):
    (tmp_path / "a.sh").write_text("echo A\n")
    (tmp_path / "b.sh").write_text("echo B\n")
    os.mkdir(rig.p("pods/demo/jobs/x"))
    sh(rig, f"{{ cat a.sh; cat b.sh; }} > {rig.p('pods/demo/jobs/x/cmd')}", tmp_path)
    with open(rig.p("pods/demo/jobs/x/exit")) as f:
        assert f.read() == "0\n"
    assert rig.read("pods/demo/jobs/x/out") == "A\nB\n"
    assert rig.read("pods/demo/jobs/x/cmd") == "echo A\necho B\n"
    assert "EBUSY" not in rig.log() and "busy" not in rig.log().lower()


def test_a_background_holder_starts_it_at_its_close(rig, tmp_path):
    """`{ echo 'echo a'; sleep 1000 & } > run`: the job is claimed when the
    shell's close comes (the latest, waiting: `exit` waits for it) and
    starts when the sleep, the last holder, closes."""
    pidfile = tmp_path / "pid"
    before = jobs_of(rig)
    sh(rig, f"{{ echo 'echo a'; sleep 1000 2>/dev/null & echo $! > {pidfile}; echo 'echo b'; }} "
            f"> {rig.p('pods/demo/run')}", tmp_path)
    pid = int(pidfile.read_text())
    try:
        after = jobs_of(rig)
        assert len(after) == len(before) + 1
        assert rig.read("pods/demo/jobs/latest/state") == "waiting\n"
        assert os.readlink(rig.p("pods/demo/jobs/latest")) == (set(after) - set(before)).pop()
        fd = os.open(rig.p("pods/demo/exit"), os.O_RDONLY | os.O_NONBLOCK)
        try:
            assert err_of(lambda: os.read(fd, 100)) == 11  # EAGAIN: it waits
        finally:
            os.close(fd)
    finally:
        os.kill(pid, signal.SIGTERM)
    assert one_job(rig, before) == ("0\n", "a\nb\n")


def test_a_failed_start_after_the_openers_close_is_in_exit_and_log(rig, pod, tmp_path):
    """When the opener's close is not the last, a start that fails is in
    the job's exit (lost) and in log."""
    pidfile = tmp_path / "pid"
    pod.kill()
    sh(rig, f"{{ echo 'echo a'; sleep 1000 2>/dev/null & echo $! > {pidfile}; }} "
            f"> {rig.p('pods/demo/run')}", tmp_path)
    os.kill(int(pidfile.read_text()), signal.SIGTERM)
    with open(rig.p("pods/demo/exit")) as f:
        assert f.read() == "lost\n"
    assert "did not start" in rig.log()
