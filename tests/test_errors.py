"""Failures: TLS, credentials, a dead or slow API, injected faults. Each
gives DESIGN.md's errno within the timeout, a line in `log`, and never a
hung shell; recent answers are served while the API fails."""

import errno
import os
import socket
import stat
import subprocess
import time

import pytest

from conftest import err_of


@pytest.mark.parametrize("cafile", [None, "/etc/ssl/certs/ca-certificates.crt"])
def test_tls_refused_without_ca(api, make_mount, cafile):
    # Without our CA (the system's, or a bundle that lacks it): refused.
    m = make_mount(api, options=("cafile=" + cafile,) if cafile else (), trust_ca=False)
    assert err_of(lambda: os.listdir(m.p("pods"))) == errno.EIO
    assert "TLS verification failed" in m.log()
    assert api.counts()["GET /pods"] == 0  # no request got through


def test_plain_http_base_works(make_api, make_mount):
    api = make_api(tls=False)
    m = make_mount(api)
    assert "demo" in os.listdir(m.p("pods"))


def test_bad_key_is_eacces(api, make_mount):
    m = make_mount(api, key="wrong")
    assert err_of(lambda: os.listdir(m.p("pods"))) == errno.EACCES
    assert "HTTP 401" in m.log()
    assert api.counts()["GET /pods"] == 1  # a 401 is not retried
    assert "wrong" not in m.log()


def test_no_key_sends_nothing(api, make_mount):
    m = make_mount(api, key=None)
    assert err_of(lambda: os.listdir(m.p("pods"))) == errno.EACCES
    assert "no API key configured" in m.log()
    assert sum(api.counts().values()) == 0


def test_key_from_cli_config(api, make_mount, tmp_path):
    home = tmp_path / "home"
    (home / ".prime").mkdir(parents=True)
    cfg = home / ".prime" / "config.json"
    cfg.write_text('{"api_key": "test-key", "team_id": null}')
    cfg.chmod(0o644)
    m = make_mount(api, key=None, home=str(home))
    assert "demo" in os.listdir(m.p("pods"))
    assert "readable by others" in m.log()
    headers = [r["headers"] for r in api.requests() if r["path"].endswith("/pods/")]
    assert headers and headers[0]["authorization"] == "Bearer test-key"


def test_key_file_option(api, make_mount, tmp_path):
    kf = tmp_path / "key"
    kf.write_text("test-key\n")
    kf.chmod(0o600)
    m = make_mount(api, options=("key_file=" + str(kf),), key="wrong")
    assert "demo" in os.listdir(m.p("pods"))


def test_key_file_readable_by_others_refused(api, certs, tmp_path):
    from conftest import PRIMEFS
    kf = tmp_path / "key"
    kf.write_text("test-key\n")
    kf.chmod(0o644)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([str(PRIMEFS), "-f", str(mnt), "-o", "key_file=" + str(kf)],
                       capture_output=True, text=True, timeout=10,
                       env={"PRIME_API_BASE_URL": api.base, "PATH": os.environ["PATH"]})
    assert r.returncode != 0
    assert "readable by others" in r.stderr


def test_api_down_fails_within_timeout(make_mount):
    # A port that refuses: connection errors retried, then EIO, fast.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    m = make_mount(None, base=f"http://127.0.0.1:{port}", options=("timeout=3",))
    t = time.monotonic()
    assert err_of(lambda: os.listdir(m.p("pods"))) == errno.EIO
    assert time.monotonic() - t < 10  # an error, not a hang
    assert "pods" in m.log()


def test_slow_api_times_out(api, make_mount):
    api.fault(kind="slow", delay=20)
    m = make_mount(api, options=("timeout=2",))
    t = time.monotonic()
    e = err_of(lambda: os.listdir(m.p("pods")))
    assert e in (errno.ETIMEDOUT, errno.EIO)
    assert time.monotonic() - t < 10  # its 2 s timeout, not the 20 s answer
    # The rest of the tree still answers while the API is down.
    assert os.path.exists(m.p("log"))
    assert "timed out" in m.log().lower() or "timeout" in m.log().lower()


def test_5xx_retried_then_eio(api, make_mount):
    api.fault(kind="500", match="GET /pods")
    m = make_mount(api)
    assert err_of(lambda: os.listdir(m.p("pods"))) == errno.EIO
    assert api.counts()["GET /pods"] == 4
    assert "HTTP 500" in m.log()
    assert m.stats()["retries"] == 3


def test_429_retry_after_honoured(api, make_mount):
    api.fault(kind="429", match="GET /pods", count=1, retry_after=1)
    m = make_mount(api)
    assert "demo" in os.listdir(m.p("pods"))
    assert m.stats()["rate_limited"] == 1
    assert api.counts()["GET /pods"] == 2
    # A Retry-After past the deadline: no early retry (a backoff of its own
    # would fit and succeed), the 429 is the answer.
    api.reset()
    api.fault(kind="429", match="GET /pods", count=1, retry_after=30)
    m = make_mount(api, options=("timeout=3",))
    assert err_of(lambda: os.listdir(m.p("pods"))) == errno.EAGAIN
    assert api.counts()["GET /pods"] == 1


def test_429_forever_is_eagain(api, make_mount):
    api.fault(kind="429", match="GET /pods", retry_after=0)
    m = make_mount(api)
    assert err_of(lambda: os.listdir(m.p("pods"))) == errno.EAGAIN


def test_bad_json_is_eio(api, make_mount):
    api.fault(kind="badjson", match="GET /pods")
    m = make_mount(api)
    assert err_of(lambda: os.listdir(m.p("pods"))) == errno.EIO
    assert "not a JSON object" in m.log()


def test_stale_answer_served_when_api_fails(api, make_mount):
    m = make_mount(api, options=("pods_ttl=0.2",))
    assert m.read("pods/demo/status") == "ACTIVE\n"
    api.fault(kind="500")
    time.sleep(0.5)
    assert m.read("pods/demo/status") == "ACTIVE\n"
    # The held answer comes at once; the failing refresh behind it logs.
    deadline = time.monotonic() + 10
    while "serving the answer" not in m.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "serving the answer" in m.log()
    assert m.stats()["stale_served"] >= 1


def test_faults_at_20_percent_reads_still_correct(api, make_mount):
    clean = make_mount(api)
    expected = {}
    for t in os.listdir(clean.p("availability")):
        for o in os.listdir(clean.p("availability", t)):
            expected[(t, o)] = clean.read("availability", t, o, "price")
    pods = sorted(os.listdir(clean.p("pods")))
    api.fault(kind="500", rate=0.2)
    api.fault(kind="reset", rate=0.1)
    m = make_mount(api, options=("timeout=20",))
    for _ in range(3):
        m.write("ctl", "refresh\n")
        assert sorted(os.listdir(m.p("pods"))) == pods
        got = {}
        for t in os.listdir(m.p("availability")):
            for o in os.listdir(m.p("availability", t)):
                got[(t, o)] = m.read("availability", t, o, "price")
        assert got == expected
    assert m.stats()["retries"] > 0


def test_mount_survives_api_dying(api, make_mount):
    m = make_mount(api, options=("pods_ttl=0", "timeout=2"))
    assert "demo" in os.listdir(m.p("pods"))
    api.stop()
    time.sleep(1.1)  # past the failure hold-down
    # Served stale (recent), then the tree still works.
    assert "demo" in os.listdir(m.p("pods"))
    assert stat.S_ISREG(os.stat(m.p("log")).st_mode)
