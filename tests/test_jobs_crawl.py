"""A job's follow file, a crawl over a pod while its jobs run, the signal
file read back, and jobs/ listed by number (DESIGN.md "Jobs")."""

import os
import stat
import subprocess

from test_jobs_files import jp, read, run, wait_for, write


def until(marker):
    """A script that runs until marker exists."""
    return f"while [ ! -e {marker} ]; do sleep 0.05; done"


def test_follow_streams_the_whole_output_and_ends_with_the_job(rig, tmp_path):
    go, go2 = tmp_path / "go", tmp_path / "go2"
    run(rig, f"echo one; {until(go)}; echo two; {until(go2)}; echo three")
    wait_for(lambda: read(jp(rig, "1", "out")) == "one\n", "first line")
    st = os.stat(jp(rig, "1", "follow"))
    assert st.st_size == 0 and stat.S_IMODE(st.st_mode) == 0o400
    # A reader that comes late still gets the job's output from its start,
    # and it ends when the job ends: nothing lost between lines.
    p = subprocess.Popen(["cat", jp(rig, "1", "follow")], stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"one\n"
        go.touch()
        assert p.stdout.readline() == b"two\n"
        # Another job on the pod: `run` moves to it, follow stays.
        run(rig, "echo other")
        assert read(rig.p("pods/demo/run")) == "other\n"
        assert p.poll() is None
        go2.touch()
        assert p.stdout.read() == b"three\n"
        assert p.wait(60) == 0
    finally:
        p.kill()
        p.wait()
    assert read(jp(rig, "1", "follow")) == "one\ntwo\nthree\n"
    assert read(jp(rig, "latest", "follow")) == "other\n"


def test_a_crawl_never_waits_nor_errs_while_exit_still_waits(rig, tmp_path):
    go = tmp_path / "go"
    run(rig, f"echo running; {until(go)}; echo done")
    os.mkdir(jp(rig, "named"))  # waiting, never started
    wait_for(lambda: read(jp(rig, "1", "out")) == "running\n", "output")
    waiter = subprocess.Popen(["cat", rig.p("pods/demo/exit")], stdout=subprocess.PIPE)
    pod = rig.p("pods/demo")
    crawls = [
        ["grep", "-r", "running", pod],
        ["cp", "-r", pod, str(tmp_path / "copy")],
        ["tar", "cf", str(tmp_path / "pod.tar"), "-C", rig.p("pods"), "demo"],
        ["rsync", "-r", pod + "/", str(tmp_path / "synced")],
        ["find", pod, "-type", "f", "-exec", "cat", "{}", "+"],
        ["find", pod, "-type", "f", "-exec", "cat", "{}", ";"],
    ]
    try:
        for argv in crawls:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            assert r.stderr == "", (argv, r.stderr)
            assert r.returncode == 0, argv
        assert (tmp_path / "copy" / "jobs" / "1" / "follow").read_text() == "running\n"
        assert (tmp_path / "copy" / "jobs" / "1" / "exit").read_text() == ""
        assert (tmp_path / "copy" / "jobs" / "1" / "signal").read_text() == "\n"
        assert (tmp_path / "synced" / "jobs" / "1" / "out").read_text() == "running\n"
        # `cat exit` in a script still waits for the job.
        assert waiter.poll() is None
        go.touch()
        assert waiter.communicate(timeout=60)[0] == b"0\n"
    finally:
        go.touch()
        waiter.kill()
        waiter.wait()


def test_signal_reads_the_last_one_sent(rig, tmp_path):
    run(rig, "sleep 1000")
    wait_for(lambda: read(jp(rig, "1", "state")) == "running\n", "running")
    sig = jp(rig, "1", "signal")
    assert stat.S_IMODE(os.stat(sig).st_mode) == 0o600
    assert read(sig) == "\n"
    write(sig, "sigterm\n")
    assert read(jp(rig, "1", "exit")) == "signal TERM\n"
    assert read(sig) == "TERM\n"
    assert os.stat(sig).st_size == len("TERM\n")


def test_jobs_listed_by_number_then_named(rig):
    os.mkdir(jp(rig, "b"))
    os.mkdir(jp(rig, "a"))
    for i in range(11):
        run(rig, f"echo {i}")
    assert read(rig.p("pods/demo/exit")) == "0\n"
    names = [str(i) for i in range(1, 12)] + ["a", "b", "latest"]
    assert os.listdir(jp(rig)) == names
    r = subprocess.run(["ls", "-U", jp(rig)], capture_output=True, text=True)
    assert r.stdout.split() == names
