"""Who may do what on a mount shared with -o allow_other (DESIGN.md,
"Credentials and trust"): mounted by root, the second uid `nobody` may read
offers, cheapest/, balance and the pods' value files, and nothing else:
renting, returning, running jobs, config, ctl, job output and log give it
EACCES, and nothing reaches the API or the pod."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from sshd import Sshd, make_key

# Run as nobody: try each operation, print {name: errno or 0}.
PROBE = r"""
import json, os, sys
mnt = sys.argv[1]
def p(*a):
    return os.path.join(mnt, *a)
def read(*a):
    with open(p(*a)) as f:
        return f.read()
def write(text, *a):
    with open(p(*a), "w") as f:
        f.write(text)
ops = {
    "mkdir pods/evil": lambda: os.mkdir(p("pods", "evil")),
    "rmdir pods/demo": lambda: os.rmdir(p("pods", "demo")),
    "write config": lambda: write("gpu_type = A100_80GB\n", "config"),
    "truncate config": lambda: os.truncate(p("config"), 0),
    "read config": lambda: read("config"),
    "write ctl": lambda: write("refresh\n", "ctl"),
    "write run": lambda: write("touch " + sys.argv[2] + "\n", "pods", "demo", "run"),
    "read run": lambda: read("pods", "demo", "run"),
    "read exit": lambda: read("pods", "demo", "exit"),
    "read log": lambda: read("log"),
    "read stats": lambda: read("stats"),
    "write value": lambda: write("x\n", "pods", "demo", "name"),
    "create file": lambda: write("x\n", "pods", "demo", "new"),
}
out = {}
for name, fn in ops.items():
    try:
        fn()
        out[name] = 0
    except OSError as e:
        out[name] = e.errno
print(json.dumps(out))
"""

READS = r"""
import glob, json, os, sys
mnt = sys.argv[1]
out = {}
for rel in ["balance", "pods/demo/status", "pods/demo/price", "pods/demo/json",
            "cheapest/H100_80GB/price"]:
    with open(os.path.join(mnt, rel)) as f:
        out[rel] = f.read()
out["offers"] = sorted(glob.glob(os.path.join(mnt, "availability/*/*/price")))[:3]
out["ls pods"] = sorted(os.listdir(os.path.join(mnt, "pods")))
print(json.dumps(out))
"""


def as_nobody(script, *args):
    cmd = "exec /usr/bin/python3 -c \"$0\" \"$@\""
    r = subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c", cmd, script, *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def shared(tmp_path, make_api, make_mount):
    keys = tmp_path / "keys"
    keys.mkdir()
    priv, pub = make_key(keys, "ed25519")
    pod = Sshd(tmp_path / "sshd", authorized_keys=[pub])
    try:
        api = make_api("--ssh", f"root@127.0.0.1:{pod.port}")
        m = make_mount(api, options=("allow_other", f"ssh_key={priv}",
                                     f"known_hosts={tmp_path / 'known_hosts'}",
                                     "timeout=5"), traversable=True)
        m.api, m.pod = api, pod
        # A directory root owns and nobody cannot write: a command that
        # reaches the pod (it runs as root there) leaves its mark in it.
        m.marks = tmp_path / "marks"
        m.marks.mkdir()
        yield m
    finally:
        pod.stop()


def test_others_can_only_read_values(shared):
    m = shared
    m.read("balance")  # the listings are fetched once by the owner
    before = m.api.counts()
    mark = m.marks / "pwned"
    got = as_nobody(PROBE, m.path, str(mark))
    import errno
    for op, err in got.items():
        assert err == errno.EACCES, (op, err, got)
    after = m.api.counts()
    for key in ("POST /pods", "DELETE /pods/{id}"):
        assert after[key] == before[key] == 0, key
    assert not any(r["method"] in ("POST", "DELETE") for r in m.api.requests())
    assert not mark.exists()
    assert "Accepted publickey" not in m.pod.log_text()  # nothing reached the pod
    # the owner's state is untouched
    assert "demo" in os.listdir(m.p("pods"))
    assert "evil" not in os.listdir(m.p("pods"))
    assert m.stats()["ssh_commands"] == 0

    reads = as_nobody(READS, m.path)
    assert reads["balance"].strip()
    assert reads["pods/demo/status"].strip()
    assert json.loads(reads["pods/demo/json"])["id"]
    assert reads["cheapest/H100_80GB/price"].strip()
    assert reads["offers"]
    assert "demo" in reads["ls pods"]


def test_owner_still_does_everything(shared):
    m = shared
    m.write("config", "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\nmax_pods = 50\n")
    assert "max_pods = 50" in m.read("config")
    m.write("ctl", "refresh\n")
    mark = m.marks / "owner"
    m.write("pods/demo/run", f"touch {mark}\n")
    assert m.read("pods/demo/exit") == "0\n"
    assert mark.exists()
    m.read("log")
    os.mkdir(m.p("pods", "mine"))
    os.rmdir(m.p("pods", "mine"))


def test_modes_say_it(shared):
    m = shared

    def mode(rel):
        return oct(os.stat(m.p(rel)).st_mode & 0o7777)

    for d in ("", "pods", "pods/demo", "availability", "history"):
        assert mode(d) == "0o755", d
    for f in ("balance", "pods/demo/status", "pods/demo/json", "cheapest/H100_80GB/price"):
        assert mode(f) == "0o444", f
    assert mode("config") == "0o600"
    assert mode("pods/demo/run") == "0o600"
    assert mode("ctl") == "0o200"
    for f in ("log", "stats", "pods/demo/exit"):
        assert mode(f) == "0o400", f
    assert os.stat(m.p("config")).st_uid == os.getuid()


def _mount_for(uid, gid, mnt):
    """A FUSE mount owned by uid, made by root (here non-root mounts cannot
    open /dev/fuse): the kernel mount is done with an open /dev/fuse, whose
    fd the daemon then serves as its mount point /dev/fd/N."""
    import ctypes
    fd = os.open("/dev/fuse", os.O_RDWR)
    libc = ctypes.CDLL(None, use_errno=True)
    opts = (f"fd={fd},rootmode=40000,user_id={uid},group_id={gid},"
            "default_permissions,allow_other")
    MS_NOSUID, MS_NODEV = 2, 4
    if libc.mount(b"primefs", str(mnt).encode(), b"fuse.primefs",
                  MS_NOSUID | MS_NODEV, opts.encode()) != 0:
        e = ctypes.get_errno()
        os.close(fd)
        raise OSError(e, os.strerror(e))
    return fd


@pytest.fixture
def open_dir():
    """A temporary directory nobody can traverse to (pytest's are 0700)."""
    d = tempfile.mkdtemp(prefix="primefs.")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def test_mounting_user_not_root(open_dir, certs, make_api):
    """A non-root mounting user can do everything the owner bits give it
    (root would bypass them), and the daemon is not dumpable."""
    from conftest import PRIMEFS, KEY, mounted
    nobody = 65534
    tmp_path = open_dir
    home = tmp_path / "home"
    home.mkdir()
    keys = home / "keys"
    keys.mkdir()
    priv, pub = make_key(keys, "ed25519")
    (home / "ca.pem").write_bytes(open(certs["ca_pem"], "rb").read())
    for root, dirs, files in os.walk(home):
        for name in dirs + files:
            os.chown(os.path.join(root, name), nobody, nobody)
    os.chown(home, nobody, nobody)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    pod = Sshd(tmp_path / "sshd", authorized_keys=[pub])
    proc = None
    fd = _mount_for(nobody, nobody, mnt)
    try:
        api = make_api("--ssh", f"root@127.0.0.1:{pod.port}")
        api.admin("ssh_key", {"name": "owner", "publicKey": pub})   # mkdir sends its id
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "PRIME_API_KEY": KEY,
               "PRIME_API_BASE_URL": api.base}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        log = open(tmp_path / "stderr", "w+")
        proc = subprocess.Popen(
            [os.path.abspath(PRIMEFS), "-f", f"/dev/fd/{fd}", "-o",
             f"cafile={home / 'ca.pem'},ssh_key={priv},known_hosts={home / 'kh'},timeout=5"],
            env=env, pass_fds=[fd], user=nobody, group=nobody, extra_groups=[],
            stdout=log, stderr=log, cwd=str(home))
        os.close(fd)
        fd = None

        def as_owner(script, *args):
            r = subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c",
                                "exec /usr/bin/python3 -c \"$0\" \"$@\"", script, *args],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr + open(tmp_path / "stderr").read()
            return r.stdout

        mark = tmp_path / "marks" / "owner"
        mark.parent.mkdir()
        out = as_owner(r"""
import os, sys
mnt, mark = sys.argv[1], sys.argv[2]
def p(*a): return os.path.join(mnt, *a)
with open(p("config"), "w") as f:
    f.write("gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\nmax_pods = 50\n")
assert "max_pods = 50" in open(p("config")).read()
with open(p("ctl"), "w") as f:
    f.write("refresh\n")
with open(p("pods", "demo", "run"), "w") as f:
    f.write("touch " + mark + "\n")
print("exit", open(p("pods", "demo", "exit")).read().strip())
open(p("log")).read(); open(p("stats")).read()
os.mkdir(p("pods", "mine"))
os.rmdir(p("pods", "mine"))
print("done")
""", str(mnt), str(mark))
        assert "exit 0" in out and "done" in out, out
        assert mark.exists()
        # The daemon runs as nobody, yet its /proc entries are root's: it
        # is not dumpable (no core dump, no ptrace by the user's processes).
        status = open(f"/proc/{proc.pid}/status").read()
        assert f"Uid:\t{nobody}\t" in status
        assert os.stat(f"/proc/{proc.pid}/environ").st_uid == 0
        assert KEY.encode() not in open(f"/proc/{proc.pid}/environ", "rb").read()
        posts = [r for r in api.requests() if r["method"] == "POST"]
        assert len(posts) == 1
    finally:
        if fd is not None:
            os.close(fd)
        if mounted(mnt):
            if subprocess.run(["fusermount3", "-u", str(mnt)]).returncode != 0:
                subprocess.run(["umount", "-l", str(mnt)])
        if proc:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        pod.stop()
    err = open(tmp_path / "stderr").read()
    assert "ERROR: AddressSanitizer" not in err and "runtime error:" not in err, err
