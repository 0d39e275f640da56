"""pods/<p>/jobs/ on a real mount with a real sshd (DESIGN.md "Jobs"):
numbered jobs from `run`, named ones from mkdir plus a write to `cmd`,
each with cmd, out, exit, state, started, ended and signal; jobs/latest;
rmdir of a job; history/<pod>/jobs after the pod and after a remount."""

import errno
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time

from conftest import err_of, read_to_eof, sanitized
from test_run import vm_hwm

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$")
JOB_FILES = {"cmd", "out", "exit", "state", "started", "ended", "signal", "follow"}


def run(m, cmd, pod="demo"):
    with open(m.p("pods", pod, "run"), "w") as f:
        f.write(cmd + "\n")


def jp(m, *parts, pod="demo"):
    return m.p("pods", pod, "jobs", *parts)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def wait_for(cond, what, limit=30):
    """A hang bound, not a timing assertion."""
    deadline = time.time() + limit
    while not cond():
        assert time.time() < deadline, what
        time.sleep(0.05)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has ended too.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_numbered_jobs_and_their_files(rig):
    assert os.listdir(jp(rig)) == []
    assert not os.path.lexists(jp(rig, "latest"))
    run(rig, "echo one; exit 3")
    assert read(rig.p("pods/demo/exit")) == "3\n"
    run(rig, "echo two")
    assert read(rig.p("pods/demo/exit")) == "0\n"
    assert sorted(os.listdir(jp(rig))) == ["1", "2", "latest"]
    assert set(os.listdir(jp(rig, "1"))) == JOB_FILES
    assert read(jp(rig, "1", "cmd")) == "echo one; exit 3\n"
    assert read(jp(rig, "1", "out")) == "one\n"
    assert read(jp(rig, "1", "exit")) == "3\n"
    assert read(jp(rig, "1", "state")) == "exited\n"
    assert ISO.match(read(jp(rig, "1", "started")))
    assert ISO.match(read(jp(rig, "1", "ended")))
    assert read(jp(rig, "2", "out")) == "two\n"
    assert os.stat(jp(rig, "1", "out")).st_size == 4
    assert os.stat(jp(rig, "1", "cmd")).st_size == len("echo one; exit 3\n")


def test_modes(rig):
    run(rig, "true")
    modes = {f: stat.S_IMODE(os.stat(jp(rig, "1", f)).st_mode) for f in JOB_FILES}
    assert modes == {"cmd": 0o600, "signal": 0o600, "out": 0o400, "exit": 0o400,
                     "state": 0o400, "started": 0o400, "ended": 0o400,
                     "follow": 0o400}
    assert stat.S_ISREG(os.stat(jp(rig, "1", "out")).st_mode)
    assert stat.S_ISDIR(os.stat(jp(rig)).st_mode)


def test_named_job(rig):
    os.mkdir(jp(rig, "train"))
    assert "train" in os.listdir(jp(rig))
    assert read(jp(rig, "train", "state")) == "waiting\n"
    assert read(jp(rig, "train", "cmd")) == ""
    assert read(jp(rig, "train", "out")) == ""
    assert read(jp(rig, "train", "started")) == "\n"
    assert err_of(lambda: os.mkdir(jp(rig, "train"))) == errno.EEXIST
    for bad in ("12", "latest"):
        assert err_of(lambda: os.mkdir(jp(rig, bad))) == errno.EINVAL
    # Two write() calls, one script; close returns once it has started.
    fd = os.open(jp(rig, "train", "cmd"), os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"echo hel")
    os.write(fd, b"lo; exit 5\n")
    os.close(fd)
    assert read(jp(rig, "train", "state")) in ("running\n", "exited\n")
    assert read(jp(rig, "train", "exit")) == "5\n"
    assert read(jp(rig, "train", "out")) == "hello\n"
    assert read(jp(rig, "train", "state")) == "exited\n"
    assert read(jp(rig, "train", "cmd")) == "echo hello; exit 5\n"
    # A started job's script stays as it ran.
    assert err_of(lambda: write(jp(rig, "train", "cmd"), "echo again\n")) == errno.EBUSY
    assert read(jp(rig, "train", "cmd")) == "echo hello; exit 5\n"
    # It is the newest job: run and exit show it.
    assert os.readlink(jp(rig, "latest")) == "train"
    assert read(rig.p("pods/demo/run")) == "hello\n"
    assert read(rig.p("pods/demo/exit")) == "5\n"


def test_named_job_script_limits(rig):
    os.mkdir(jp(rig, "big"))
    line = b": a comment line that only pads the script out a little\n"
    script = line * (200 * 1024 // len(line)) + b"echo done\n"
    with open(jp(rig, "big", "cmd"), "wb") as f:
        f.write(script)
    assert read(jp(rig, "big", "exit")) == "0\n"
    assert read(jp(rig, "big", "out")) == "done\n"
    os.mkdir(jp(rig, "huge"))
    before = rig.stats()["ssh_commands"]
    assert err_of(lambda: write(jp(rig, "huge", "cmd"), "#" * (1 << 20) + "\n")) == errno.E2BIG
    assert read(jp(rig, "huge", "state")) == "waiting\n"
    assert rig.stats()["ssh_commands"] == before
    # Still waiting: a script that fits starts it.
    write(jp(rig, "huge", "cmd"), "read x; echo \"rc=$?\"\n")  # stdin at EOF
    assert read(jp(rig, "huge", "exit")) == "0\n"
    assert read(jp(rig, "huge", "out")) == "rc=1\n"


def test_latest_follows_the_newest_job(rig):
    run(rig, "echo first")
    assert read(rig.p("pods/demo/exit")) == "0\n"
    assert os.readlink(jp(rig, "latest")) == "1"
    assert read(jp(rig, "latest", "out")) == "first\n"
    os.mkdir(jp(rig, "named"))
    assert os.readlink(jp(rig, "latest")) == "1"  # not started: not newest
    write(jp(rig, "named", "cmd"), "echo second; exit 2\n")
    assert os.readlink(jp(rig, "latest")) == "named"
    assert read(rig.p("pods/demo/run")) == "second\n"
    assert read(rig.p("pods/demo/exit")) == "2\n"
    run(rig, "echo third")  # named jobs take no number
    assert os.readlink(jp(rig, "latest")) == "2"
    assert read(jp(rig, "latest", "exit")) == "0\n"
    assert read(rig.p("pods/demo/run")) == "third\n"
    # A job removed: latest is the newest one left.
    os.rmdir(jp(rig, "2"))
    assert os.readlink(jp(rig, "latest")) == "named"


def test_concurrent_scripts_read_their_own_exit(rig):
    """Each script makes its job, starts it and reads its own exit, while
    the others run theirs: never another's status."""
    script = ("set -e; d={d}/s$1; mkdir $d; "
              "printf \"sleep 0.$1; echo job$1; exit $1\\n\" > $d/cmd; "
              "cat $d/exit; cat $d/out")
    procs = [subprocess.Popen(["bash", "-c", script.format(d=jp(rig)), "x", str(i)],
                              stdout=subprocess.PIPE, text=True) for i in range(1, 7)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert outs == [f"{i}\njob{i}\n" for i in range(1, 7)]
    # Numbered jobs too: each jobs/N/exit is its own script's.
    threads = [threading.Thread(target=run, args=(rig, f"sleep 0.{i}; exit {i}"))
               for i in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for n in range(1, 5):
        want = read(jp(rig, str(n), "cmd")).split("exit ")[1]
        assert read(jp(rig, str(n), "exit")) == want


def test_term_signal_ends_the_job_and_its_process_group(rig, tmp_path):
    pidfile = tmp_path / "bg"
    run(rig, f"sleep 60 & echo $! > {pidfile}; echo started; sleep 60")
    wait_for(lambda: read(jp(rig, "1", "out")) == "started\n", "job started")
    bg = int(pidfile.read_text())
    assert alive(bg)
    assert read(jp(rig, "1", "state")) == "running\n"
    write(jp(rig, "1", "signal"), "TERM\n")
    r = subprocess.run(["cat", jp(rig, "1", "exit")], capture_output=True,
                       text=True, timeout=30)  # a hang bound, not the 60 s
    assert r.stdout == "signal TERM\n"
    assert read(jp(rig, "1", "state")) == "exited\n"
    assert ISO.match(read(jp(rig, "1", "ended")))
    wait_for(lambda: not alive(bg), "the background child got TERM too")
    # An ended job: ESRCH; an unknown signal: EINVAL.
    assert err_of(lambda: write(jp(rig, "1", "signal"), "TERM\n")) == errno.ESRCH
    run(rig, "sleep 60")
    assert err_of(lambda: write(jp(rig, "2", "signal"), "NOSUCH\n")) == errno.EINVAL
    write(jp(rig, "2", "signal"), "SIGINT")
    assert read(jp(rig, "2", "exit")) == "signal INT\n"


def test_ctrl_c_ends_a_signal_waiting_for_the_jobs_group(rig, pod):
    """A job whose wrapper has not told its process group yet (the pod's
    ~/.bashrc is slow) makes a write to its signal wait for it; Ctrl-C
    ends that wait: EINTR, and nothing was sent (not ESRCH once the wait
    ran out)."""
    bashrc = pod.home / ".bashrc"
    bashrc.write_text(bashrc.read_text() + "sleep 30\n")
    run(rig, "sleep 60")
    wait_for(lambda: read(jp(rig, "1", "state")) == "running\n", "job started")
    # Python's own SIGINT handler: the kernel waits for primefs's answer.
    p = subprocess.Popen([sys.executable, "-c",
                          "import os, sys\n"
                          f"fd = os.open({jp(rig, '1', 'signal')!r}, os.O_WRONLY)\n"
                          "os.write(fd, b'TERM')\n"], stderr=subprocess.PIPE)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)  # a hang bound
    assert b"KeyboardInterrupt" in err
    assert "TERM not sent: Interrupted system call" in rig.log(), rig.log()
    assert read(jp(rig, "1", "signal")) in ("", "\n")
    assert read(jp(rig, "1", "state")) == "running\n"


def test_out_is_a_regular_file_head_and_grep(rig):
    run(rig, "seq 1 100000; echo err >&2")
    assert read(jp(rig, "1", "exit")) == "0\n"
    out = jp(rig, "1", "out")
    r = subprocess.run(["head", "-n", "2", out], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, "1\n2\n", "")
    # head leaves the offset after what it printed: a seekable file.
    r = subprocess.run(f"{{ head -n 2; head -n 1; }} < {out}", shell=True,
                       capture_output=True, text=True, timeout=30)
    assert r.stdout == "1\n2\n3\n", r.stderr
    size = os.stat(out).st_size
    assert size == len("".join(f"{i}\n" for i in range(1, 100001))) + 4
    r = subprocess.run(["tail", "-n", "2", out], capture_output=True, text=True, timeout=30)
    assert r.stdout == "100000\nerr\n"
    r = subprocess.run(["grep", "-c", "^99", out], capture_output=True, text=True, timeout=30)
    assert r.stdout == "1111\n"
    with open(out, "rb") as f:
        f.seek(size - 11)
        assert f.read() == b"99999\n100000\nerr\n"[-11:]


def test_out_in_order(rig):
    run(rig, "echo out; echo err >&2; echo out2")
    assert read(jp(rig, "1", "exit")) == "0\n"
    assert read(jp(rig, "1", "out")) == "out\nerr\nout2\n"


def test_tail_f_sees_a_running_job_grow(rig, tmp_path):
    gate = tmp_path / "gate"
    run(rig, f"echo line1; while [ ! -e {gate} ]; do sleep 0.05; done; echo line2; sleep 60")
    wait_for(lambda: read(jp(rig, "1", "out")) == "line1\n", "first line")
    tail = subprocess.Popen(["tail", "-f", "-s", "0.1", jp(rig, "1", "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert tail.stdout.readline() == b"line1\n"
        gate.touch()
        assert tail.stdout.readline() == b"line2\n"  # a hang bound: the test's own
        # size grows: a regular file that grows, with its true size
        assert os.stat(jp(rig, "1", "out")).st_size == 12
    finally:
        tail.kill()
        err = tail.communicate(timeout=10)[1]
        write(jp(rig, "1", "signal"), "KILL")
    assert b"truncated" not in err
    assert read(jp(rig, "1", "exit")) == "signal KILL\n"


def test_rmdir_of_a_running_job_kills_and_forgets_it(rig, tmp_path):
    pidfile = tmp_path / "pid"
    os.mkdir(jp(rig, "long"))
    write(jp(rig, "long", "cmd"), f"echo $$ > {pidfile}; sleep 60 & wait\n")
    wait_for(pidfile.exists, "job started")
    wait_for(lambda: pidfile.read_text().strip(), "pid written")
    pid = int(pidfile.read_text())
    # A reader of its exit, open before the rmdir, waits in the daemon.
    fd = os.open(jp(rig, "long", "exit"), os.O_RDONLY)
    got = []
    reader = threading.Thread(target=lambda: got.append(read_to_eof(fd)))
    reader.start()
    try:
        rm = subprocess.run(["rmdir", jp(rig, "long")], timeout=10)
        assert rm.returncode == 0
        reader.join(10)  # a hang bound
    finally:
        os.close(fd)
    assert got and got[0] in (b"signal KILL\n", b"lost\n")
    assert "long" not in os.listdir(jp(rig))
    assert not os.path.exists(jp(rig, "long"))
    wait_for(lambda: not alive(pid), "the job was killed")
    assert err_of(lambda: os.rmdir(jp(rig, "long"))) == errno.ENOENT


def test_jobs_kept_in_history_after_rmdir(rig):
    rig.write("config", "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    os.mkdir(rig.p("pods/gone"))
    run(rig, "echo kept; exit 4", pod="gone")
    assert read(rig.p("pods/gone/exit")) == "4\n"
    os.mkdir(jp(rig, "never", pod="gone"))
    os.rmdir(rig.p("pods/gone"))
    h = rig.p("history/gone/jobs")
    assert sorted(os.listdir(h)) == ["1", "latest", "never"]
    assert read(os.path.join(h, "1", "out")) == "kept\n"
    assert read(os.path.join(h, "1", "exit")) == "4\n"
    assert read(os.path.join(h, "1", "cmd")) == "echo kept; exit 4\n"
    assert set(os.listdir(os.path.join(h, "1"))) == JOB_FILES - {"signal"}
    # Read-only.
    assert stat.S_IMODE(os.stat(os.path.join(h, "never", "cmd")).st_mode) == 0o400
    assert err_of(lambda: write(os.path.join(h, "never", "cmd"), "true\n")) == errno.EACCES
    assert err_of(lambda: os.mkdir(os.path.join(h, "new"))) in (errno.EPERM, errno.EACCES)
    assert err_of(lambda: os.rmdir(os.path.join(h, "1"))) in (errno.EPERM, errno.EACCES)


def test_history_jobs_after_a_remount(pod, keys, make_api, make_mount, tmp_path):
    api = make_api("--ssh", f"root@127.0.0.1:{pod.port}",
                   "--pending-secs", "1", "--install-secs", "1")
    opts = (f"ssh_key={keys[0]}", f"known_hosts={tmp_path / 'known_hosts'}",
            "ready_timeout=20", "timeout=5", f"state={tmp_path / 'state'}")
    m = make_mount(api, options=opts)
    m.write("config", "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    os.mkdir(m.p("pods/gone"))
    run(m, "echo kept; exit 4", pod="gone")
    assert read(m.p("pods/gone/exit")) == "4\n"
    run(m, "echo on demo")
    # Ended before the unmount (one still running then is `lost`).
    assert read(m.p("pods/demo/exit")) == "0\n"
    os.rmdir(m.p("pods/gone"))
    m.stop()
    m2 = make_mount(api, options=opts)
    h = m2.p("history/gone/jobs")
    assert sorted(os.listdir(h)) == ["1", "latest"]
    assert read(os.path.join(h, "1", "out")) == "kept\n"
    assert read(os.path.join(h, "1", "exit")) == "4\n"
    assert read(os.path.join(h, "1", "state")) == "exited\n"
    assert read(m2.p("pods/demo/jobs/1/out")) == "on demo\n"
    assert read(m2.p("pods/demo/run")) == "on demo\n"


def test_huge_output_through_out_in_bounded_memory(rig):
    """1 GiB read through jobs/N/out, complete, with the daemon's peak
    resident memory under 64 MiB (smaller, and unchecked, under ASan)."""
    size = (256 << 20) if sanitized() else (1 << 30)
    run(rig, f"head -c {size} /dev/zero")
    assert subprocess.run(["cat", jp(rig, "1", "exit")], capture_output=True,
                          text=True, timeout=600).stdout == "0\n"
    r = subprocess.run(f"cat {jp(rig, '1', 'out')} | wc -c", shell=True,
                       capture_output=True, text=True, timeout=600)
    assert int(r.stdout) == size, r.stdout
    assert os.stat(jp(rig, "1", "out")).st_size == size
    hwm = vm_hwm(rig.proc.pid)
    print(f"daemon VmHWM {hwm / (1 << 20):.1f} MiB after {size >> 20} MiB through out")
    if not sanitized():
        assert hwm < 64 << 20, hwm


def test_signal_by_number_or_name_with_or_without_sig(rig):
    """`echo 9 > signal` is kill -9: numbers as kill -l knows them (1-31,
    34-64), names with or without SIG, any case; others are EINVAL and
    send nothing."""
    run(rig, "echo started; sleep 60")
    sig = jp(rig, "1", "signal")
    wait_for(lambda: read(jp(rig, "1", "out")) == "started\n", "job started")
    for bad in ("0", "65", "32", "-9", "9x", "SIG", "SIG9", "100"):
        assert err_of(lambda: write(sig, bad + "\n")) == errno.EINVAL, bad
    assert read(jp(rig, "1", "state")) == "running\n"
    write(sig, "9\n")
    assert read(jp(rig, "1", "exit")) == "signal KILL\n"
    for n, name in (("15", "TERM"), ("2", "INT"), ("sigterm", "TERM"), ("Hup", "HUP")):
        run(rig, "echo started; sleep 60")
        job = os.readlink(rig.p("pods/demo/jobs/latest"))
        wait_for(lambda: read(jp(rig, job, "out")) == "started\n", "job started")
        write(jp(rig, job, "signal"), n + "\n")
        assert read(jp(rig, job, "exit")) == f"signal {name}\n", n
