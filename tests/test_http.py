"""The HTTP client under many threads (build/tests/unit/test_http against the
fake API over TLS, under whatever PRIMEFS_BUILD is: run it with the ASan
build too), the same under helgrind (plain build only), and a daemon whose
stderr nobody reads: it must keep serving.

PRIMEFS_WRAPPER (e.g. valgrind) wraps test_http like any unit program.
"""

import errno
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BUILD, KEY, PRIMEFS, mounted, sanitized

EXE = BUILD / "tests" / "unit" / "test_http"


def run_stress(api, certs, wrapper, threads=16, waves=3, calls=12):
    ca = certs["ca_pem"] if api.tls else ""
    cmd = wrapper + [str(EXE), api.base, ca, KEY, str(threads), str(waves), str(calls)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = r.stdout[-6000:] + "\n--- stderr:\n" + r.stderr[-6000:]
    assert r.returncode == 0, out
    assert not [l for l in r.stdout.splitlines() if l.startswith("not ok")], out
    assert "ERROR: AddressSanitizer" not in r.stderr, out
    assert "runtime error:" not in r.stderr, out
    sent = {m.group(1): int(m.group(2))
            for m in re.finditer(r"^# sent (\S+ \S+) (\d+)$", r.stdout, re.M)}
    return sent, out


def add_faults(api):
    # Retried 503s, connections cut mid-request (GETs and POSTs alike).
    api.fault(kind="503", match="GET /pods", rate=0.2)
    api.fault(kind="reset", match="GET /billing/wallet", rate=0.05)
    api.fault(kind="reset", match="POST /billing/wallet", rate=0.3)


def test_many_threads_one_client(make_api, certs):
    api = make_api()
    add_faults(api)
    sent, out = run_stress(api, certs, shlex.split(os.environ.get("PRIMEFS_WRAPPER", "")))
    counts = api.counts()
    # Every request the client put on the wire reached the server once: a
    # POST is never sent twice behind our back (its cut connections are
    # not retried), and nothing went missing or astray between threads.
    assert counts["POST /billing/wallet"] == sent["POST /billing/wallet"], out
    assert counts["GET /pods"] == sent["GET /pods"], out
    assert counts["GET /availability/gpu-summary"] == sent["GET /availability/gpu-summary"], out
    # libcurl itself may resend a GET whose reused connection was cut.
    assert counts["GET /billing/wallet"] >= sent["GET /billing/wallet"], out


HELGRIND_SUPP = """
{
   libcurl 7.88 guards its global init flag with its own atomic spinlock
   Helgrind:Race
   fun:curl_easy_init
}
{
   p11-kit destroys a mutex it never set up, at exit
   Helgrind:Misc
   ...
   obj:*/libp11-kit.so*
}
"""


@pytest.mark.skipif(not shutil.which("valgrind"), reason="no valgrind")
@pytest.mark.skipif(sanitized(), reason="helgrind cannot run an ASan build")
def test_many_threads_under_helgrind(make_api, certs, tmp_path):
    """No data race in the client: connections are per thread (with the
    connection cache in the share handle, helgrind saw libcurl's connection
    state written by one thread without the lock and read by another)."""
    api = make_api(tls=False)   # OpenSSL's own lock-free code is not ours
    add_faults(api)
    supp = tmp_path / "curl.supp"
    supp.write_text(HELGRIND_SUPP)
    wrapper = ["valgrind", "--tool=helgrind", "-q", "--error-exitcode=97",
               "--suppressions=" + str(supp)]
    sent, out = run_stress(api, certs, wrapper, threads=6, waves=2, calls=8)
    assert "Possible data race" not in out, out


# ---- a daemon whose stderr is not read ----

HANG = 10   # seconds: only catches a hang


def in_thread(fn):
    """Runs fn in a thread; returns (done, result-or-exception)."""
    box = {}

    def run():
        try:
            box["v"] = fn()
        except BaseException as e:   # noqa: B902 - reported to the test
            box["v"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(HANG)
    return (not t.is_alive()), box.get("v")


def fill_pipe(rfd):
    """Fills the pipe through a write end of its own, opened from the read
    end's /proc entry (its O_NONBLOCK leaves the daemon's end blocking)."""
    fd = os.open("/proc/self/fd/%d" % rfd, os.O_WRONLY | os.O_NONBLOCK)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except BlockingIOError:
        pass
    finally:
        os.close(fd)


def test_unread_stderr_does_not_stall(make_api, certs):
    api = make_api()
    d = tempfile.mkdtemp(prefix="primefs.")
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIME_")}
    env.update(HOME=d, XDG_CONFIG_HOME=os.path.join(d, ".config"),
               PRIME_API_KEY=KEY, PRIME_API_BASE_URL=api.base)
    rfd, wfd = os.pipe()
    wrapper = shlex.split(os.environ.get("PRIMEFS_WRAPPER", ""))
    proc = subprocess.Popen(wrapper + [str(PRIMEFS), "-f", mnt, "-o", "cafile=" + certs["ca_pem"]],
                            env=env, stdout=subprocess.DEVNULL, stderr=wfd)
    os.close(wfd)
    wfd = None
    drained = bytearray()
    try:
        deadline = time.time() + (60 if wrapper else 10)
        while not mounted(mnt):
            assert proc.poll() is None and time.time() < deadline, "primefs did not mount"
            time.sleep(0.02)
        # Now nobody reads the pipe, and it is full.
        fill_pipe(rfd)
        api.fault(kind="500", match="GET /pods")
        api.fault(kind="500", match="GET /billing")
        # Each failure is a log line (and a line meant for stderr).
        for what in ("pods", "balance", "pods", "balance"):
            path = os.path.join(mnt, what)
            done, v = in_thread(lambda: os.listdir(path) if what == "pods"
                                else open(path).read())
            assert done, "a failing %s hung: the daemon is stuck on stderr" % what
            assert isinstance(v, OSError) and v.errno == errno.EIO, v
        for name in ("log", "stats"):
            done, v = in_thread(lambda: open(os.path.join(mnt, name)).read())
            assert done, "reading %s hung: the daemon is stuck on stderr" % name
            assert isinstance(v, str), v
            if name == "log":
                assert "HTTP 500" in v
        done, v = in_thread(lambda: os.listdir(os.path.join(mnt, "availability")))
        assert done, "listing offers hung"
        assert isinstance(v, list) and v, v
    finally:
        # Read what stderr got, so that a stuck daemon can finish.
        stop = threading.Event()

        def drain():
            while not stop.is_set():
                try:
                    b = os.read(rfd, 65536)
                except OSError:
                    return
                if not b:
                    return
                drained.extend(b)

        t = threading.Thread(target=drain, daemon=True)
        t.start()
        for cmd in (["fusermount3", "-u", mnt], ["fusermount3", "-u", "-z", mnt],
                    ["umount", "-l", mnt]):
            if not mounted(mnt) or subprocess.run(cmd, stderr=subprocess.DEVNULL).returncode == 0:
                break
        try:
            rc = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        t.join(5)
        stop.set()
        os.close(rfd)
        shutil.rmtree(d, ignore_errors=True)
    text = drained.decode(errors="replace")
    assert "ERROR: AddressSanitizer" not in text, text[-4000:]
    assert "runtime error:" not in text, text[-4000:]
    assert rc == 0, text[-4000:]
    # What was logged meanwhile reached stderr once it was read again.
    assert "HTTP 500" in text, text[-4000:]
