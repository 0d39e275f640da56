"""Races on one open `run` handle (src/fuse/fs.c): poll, write (each line starts a
command and drops the handle's previous one), read and close, from several
threads at once, on a real mount against a real sshd. Run it under the ASan
build (PRIMEFS_BUILD=build-asan): a watcher left on a freed command or a
freed handle shows up there as a use-after-free, which make_mount's teardown
(and the checks here) catch. In the plain build it checks that the handle
keeps working and the daemon stays up."""

import errno
import os
import select
import threading

import pytest

from sshd import Sshd, make_key

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sshd and FUSE need root")

WRITES = int(os.environ.get("PRIMEFS_RACE_WRITES", "300"))  # commands per handle


@pytest.fixture
def rig(tmp_path, make_api, make_mount):
    d = tmp_path / "keys"
    d.mkdir()
    key, pub = make_key(d, "ed25519")
    # Many short commands may overlap on the one session: let sshd take them.
    pod = Sshd(tmp_path / "sshd", authorized_keys=[pub], extra_config=["MaxSessions 200"])
    try:
        api = make_api("--ssh", f"root@127.0.0.1:{pod.port}")
        m = make_mount(api, options=(f"ssh_key={key}", f"known_hosts={tmp_path / 'known_hosts'}",
                                     "timeout=10"))
        yield m
    finally:
        pod.stop()


def no_sanitizer_report(m):
    out = m.output()
    assert "ERROR: AddressSanitizer" not in out, out[-6000:]
    assert "runtime error:" not in out, out[-6000:]


def poll_loop(fd, stop, errors, use_select=False):
    p = select.poll()
    p.register(fd, select.POLLIN)
    while not stop.is_set():
        try:
            if use_select:
                select.select([fd], [], [], 0.01)
            else:
                p.poll(10)
        except OSError as e:
            if e.errno != errno.EBADF:  # closed under it at the end
                errors.append(("poll", e))
            return


def test_poll_write_read_on_one_handle(rig):
    """One thread polls, one selects, one reads, one writes command after
    command on the same O_RDWR handle; then it closes while they still
    poll."""
    run = rig.p("pods", "demo", "run")
    fd = os.open(run, os.O_RDWR)
    stop = threading.Event()
    errors = []

    def reader():
        while not stop.is_set():
            try:
                os.read(fd, 4096)
            except OSError as e:
                if e.errno != errno.EBADF:  # closed under it at the end
                    errors.append(("read", e))
                return

    threads = [threading.Thread(target=poll_loop, args=(fd, stop, errors, i == 0))
               for i in range(3)]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    failed = 0
    try:
        for i in range(WRITES):
            # Some end at once, some still write after the next one started
            # (their output then wakes a watcher of a command the handle
            # has dropped).
            line = b"echo x\n" if i % 3 else b"sleep 0.05; echo y; sleep 0.05; echo z\n"
            try:
                os.write(fd, line)
            except OSError as e:
                failed += 1
                errors.append(("write", e))
    finally:
        os.write(fd, b"echo last\n")
        stop.set()
        # Close while the pollers and the reader may still be inside.
        os.close(fd)
        for t in threads:
            t.join(20)
    assert not any(t.is_alive() for t in threads), "a thread hangs"
    assert failed == 0, errors[:5]
    assert not errors, errors[:5]
    # The mount still answers and runs commands.
    with open(run, "w") as f:
        f.write("echo still\n")
    assert rig.read("pods", "demo", "exit") == "0\n"
    assert rig.read("pods", "demo", "run") == "still\n"
    no_sanitizer_report(rig)


def test_close_while_polling(rig):
    """Handles closed while another thread polls them, their commands still
    producing output after the close (late wake-ups of a freed handle)."""
    run = rig.p("pods", "demo", "run")
    for i in range(30):
        fd = os.open(run, os.O_RDWR)
        os.write(fd, b"sleep 0.05; echo a; sleep 0.1; echo b\n")
        stop = threading.Event()
        errors = []
        t = threading.Thread(target=poll_loop, args=(fd, stop, errors))
        t.start()
        # A second command on the same handle: the first is dropped while
        # it still runs and the poller may be watching it.
        os.write(fd, b"sleep 0.02; echo c; sleep 0.1; echo d\n")
        os.close(fd)
        stop.set()
        t.join(20)
        assert not t.is_alive(), "poll hangs"
        assert not errors, errors
    # The late output of the last commands arrives after every close.
    with open(rig.p("pods", "demo", "run"), "w") as f:
        f.write("sleep 0.5; echo done\n")
    assert rig.read("pods", "demo", "exit") == "0\n"
    assert rig.read("pods", "demo", "run") == "done\n"
    no_sanitizer_report(rig)
