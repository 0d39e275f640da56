"""pytest harness for primefs: the fake API (HTTP or HTTPS) as a subprocess,
and primefs really mounted over it with FUSE.

Environment:
  PRIMEFS_BUILD    build directory holding the primefs binary (default: build)
  PRIMEFS_WRAPPER  command to run the daemon under, e.g. "valgrind -q
                   --error-exitcode=99" (split on spaces)
"""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from make_certs import make_certs  # noqa: E402
from sshd import Sshd, make_key  # noqa: E402

BUILD = Path(os.environ.get("PRIMEFS_BUILD", ROOT / "build"))
PRIMEFS = BUILD / "primefs"
KEY = "test-key"


def _sigterm(signum, frame):
    # meson/CI timeouts send SIGTERM: turn it into an exit so that every
    # `finally` runs and no mount is left behind.
    sys.exit(1)


signal.signal(signal.SIGTERM, _sigterm)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


class FakeAPI:
    """The fake API server; admin calls go through its /_admin endpoints."""

    def __init__(self, certs=None, args=(), tls=True):
        cmd = ["/usr/bin/python3", str(HERE / "fake_api.py"), "--key", KEY]
        self.tls = tls and certs is not None
        if self.tls:
            cmd += ["--tls-cert", certs["server_pem"], "--tls-key", certs["server_key"]]
        cmd += list(args)
        self.log = tempfile.NamedTemporaryFile(prefix="fake_api.", suffix=".log", delete=False)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("fake API did not start: " + Path(self.log.name).read_text()[-2000:])
        self.port = int(line)
        scheme = "https" if self.tls else "http"
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.ctx = None
        if self.tls:
            import ssl
            self.ctx = ssl.create_default_context(cafile=certs["ca_pem"])

    def _call(self, method, path, body=None, auth=False):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", "Bearer " + KEY)
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def admin(self, what, body=None):
        if body is None and what in ("stats",):
            return self._call("GET", "/_admin/" + what)
        return self._call("POST", "/_admin/" + what, body if body is not None else {})

    def counts(self):
        return self.admin("stats")["counts"]

    def requests(self):
        return self.admin("stats")["requests"]

    def fault(self, **rule):
        return self.admin("fault", rule)

    def clear_faults(self):
        return self.admin("clear_faults")

    def reset(self):
        return self.admin("reset")

    def get(self, path):
        """A real API call, as a client would make it (counted)."""
        return self._call("GET", "/api/v1" + path, auth=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# Tests press Ctrl-C on a child (SIGINT to a cat or rmdir waiting in the
# mount). A suite started in the background by a shell without job control
# (run-all's `&`, a nohup) inherits SIGINT ignored, and so would every child:
# a handler of our own is reset to the default at exec, as a terminal's is.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def sanitized():
    """Whether BUILD was built with a sanitizer (ASan/UBSan)."""
    try:
        opts = json.loads((BUILD / "meson-info" / "intro-buildoptions.json").read_text())
    except OSError:
        return False
    return any(o["name"] == "b_sanitize" and o["value"] not in ("none", "") for o in opts)


def err_of(fn):
    """The errno fn() fails with, or 0."""
    try:
        fn()
    except OSError as e:
        return e.errno
    return 0


def read_to_eof(fd, size=4096):
    """Everything os.read gives on fd until end of file."""
    out = b""
    while True:
        chunk = os.read(fd, size)
        if not chunk:
            return out
        out += chunk


def mounted(mnt):
    mnt = os.path.realpath(mnt)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == mnt for line in f)


def register_ssh_key(api, opts):
    """The account knows the mount's -o ssh_key (its .pub), as primary, as
    an account that rents pods with it does (mkdir sends its sshKeyId)."""
    for o in opts:
        if o.startswith("ssh_key="):
            pub = Path(o[len("ssh_key="):] + ".pub")
            if pub.exists():
                api.admin("ssh_key", {"name": pub.stem, "publicKey": pub.read_text()})


class Mount:
    """primefs mounted in the foreground (-f) so that the test holds its pid."""

    def __init__(self, api=None, options=(), env=None, base=None, certs=None,
                 key=KEY, home=None, trust_ca=True, source=None, traversable=False,
                 register_key=True):
        self.dir = tempfile.mkdtemp(prefix="primefs.")
        if traversable:  # for a second uid on an allow_other mount
            os.chmod(self.dir, 0o755)
        self.path = os.path.join(self.dir, "mnt")
        os.mkdir(self.path)
        self.home = home or os.path.join(self.dir, "home")
        os.makedirs(self.home, exist_ok=True)
        e = {k: v for k, v in os.environ.items() if not k.startswith("PRIME_")}
        e["HOME"] = self.home
        e["XDG_CONFIG_HOME"] = os.path.join(self.home, ".config")
        if key is not None:
            e["PRIME_API_KEY"] = key
        e["PRIME_API_BASE_URL"] = base or api.base
        e.update(env or {})
        opts = list(options)
        if register_key and api is not None:
            register_ssh_key(api, opts)
        if (trust_ca and certs is not None and api is not None and api.tls
                and not any(o.startswith("cafile=") for o in opts)):
            opts.append("cafile=" + certs["ca_pem"])
        wrapper = shlex.split(os.environ.get("PRIMEFS_WRAPPER", ""))
        # source: what mount.fuse3 passes first for an fstab line.
        cmd = wrapper + [str(PRIMEFS), "-f"] + ([source] if source else []) + [self.path]
        if opts:
            cmd += ["-o", ",".join(opts)]
        self.stderr = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen(cmd, env=e, stdout=self.stderr, stderr=self.stderr)
        deadline = time.time() + (60 if wrapper else 10)
        while not mounted(self.path):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("primefs did not mount: " + self.output())
            time.sleep(0.02)

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def read(self, *parts):
        with open(self.p(*parts)) as f:
            return f.read()

    def write(self, rel, text):
        with open(self.p(rel), "w") as f:
            f.write(text)

    def log(self):
        return self.read("log")

    def stats(self):
        out = {}
        for line in self.read("stats").splitlines():
            key, _, value = line.rpartition(" ")
            out[key] = int(value)
        return out

    def output(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self):
        if mounted(self.path):
            for cmd in (["fusermount3", "-u", self.path],
                        ["fusermount3", "-u", "-z", self.path],
                        ["umount", "-l", self.path]):
                if subprocess.run(cmd, stderr=subprocess.DEVNULL).returncode == 0:
                    break
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                rc = self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
        return rc


@pytest.fixture
def make_api(certs):
    apis = []

    def make(*args, tls=True):
        a = FakeAPI(certs, args, tls=tls)
        apis.append(a)
        return a

    yield make
    for a in apis:
        a.stop()


@pytest.fixture
def make_mount(certs):
    mounts = []

    def make(api=None, options=(), **kw):
        m = Mount(api, options, certs=certs, **kw)
        mounts.append(m)
        return m

    yield make
    for m in mounts:
        rc = m.stop()
        # Under a wrapper such as valgrind, its error exit fails the test.
        if os.environ.get("PRIMEFS_WRAPPER"):
            assert rc == 0, "daemon exited %s:\n%s" % (rc, m.output()[-4000:])
        assert "ERROR: AddressSanitizer" not in m.output(), m.output()[-4000:]
        assert "runtime error:" not in m.output(), m.output()[-4000:]
    # Its state (a job's output may be 1 GiB) goes with it: a run leaves
    # nothing behind in /tmp but what a failed test shows.
    for m in mounts:
        if not mounted(m.path):
            m.stderr.close()
            shutil.rmtree(m.dir, ignore_errors=True)


@pytest.fixture
def api(make_api):
    return make_api()


@pytest.fixture
def mnt(api, make_mount):
    return make_mount(api)


@pytest.fixture
def keys(tmp_path):
    """An ed25519 key pair for a pod: (private key path, public key line)."""
    d = tmp_path / "keys"
    d.mkdir()
    return make_key(d, "ed25519")


@pytest.fixture
def pod(tmp_path, keys):
    """A real sshd on 127.0.0.1 (see sshd.py) that lets `keys` in as root."""
    s = Sshd(tmp_path / "sshd", authorized_keys=[keys[1]])
    yield s
    s.stop()


@pytest.fixture
def rig(pod, keys, make_api, make_mount, tmp_path):
    """The fake API whose pods are played by a real sshd (`pod`), and a
    mount that reaches them with the test key."""
    api = make_api("--ssh", f"root@127.0.0.1:{pod.port}",
                   "--pending-secs", "1", "--install-secs", "1")
    m = make_mount(api, options=(f"ssh_key={keys[0]}",
                                 f"known_hosts={tmp_path / 'known_hosts'}",
                                 "ready_timeout=20", "timeout=5"))
    m.api = api
    m.known_hosts = tmp_path / "known_hosts"
    return m
