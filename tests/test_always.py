"""Always on (DESIGN.md "Always on"): primefs started again on the mount
point a kill -9 left dead mounts there without a fusermount3 first, re-arms
the guards from the state directory and fires what fell due meanwhile; an
/etc/fstab line of type fuse.primefs mounts through mount(8) and
mount.fuse3; the systemd units pass `systemd-analyze verify` and say what
the design asks; the log reads the same after a remount."""

import errno
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD, KEY, PRIMEFS, ROOT, err_of, mounted

HANG = 30  # seconds: only catches a hang


def wait_for(fn, limit=HANG):
    end = time.time() + limit
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.1)
    return False


def add(api, name):
    return api.admin("pods", {"add": [dict(name=name)]})["added"][0]


def ok_deletes(api, pid):
    return [r for r in api.requests()
            if r["method"] == "DELETE" and r["path"].rstrip("/").endswith("/" + pid)
            and r["status"] is not None and 200 <= r["status"] < 300]


def env_for(api, home):
    e = {k: v for k, v in os.environ.items() if not k.startswith("PRIME_")}
    e.update(HOME=str(home), XDG_CONFIG_HOME=str(Path(home) / ".config"),
             PRIME_API_KEY=KEY, PRIME_API_BASE_URL=api.base)
    return e


class Daemon:
    """primefs -f on a mount point the test chooses (so that a second one
    can start on the same one)."""

    def __init__(self, api, certs, mp, state, home, out):
        opts = f"state={state},cafile={certs['ca_pem']},guards_every=1,lease_grace=1"
        self.mp = str(mp)
        self.out = open(out, "a+")
        self.proc = subprocess.Popen([str(PRIMEFS), "-f", self.mp, "-o", opts],
                                     env=env_for(api, home), stdout=self.out,
                                     stderr=self.out)
        ok = wait_for(lambda: self.proc.poll() is not None or self.serving(), 15)
        if not (ok and self.proc.poll() is None):
            self.stop()
            raise RuntimeError("primefs did not mount: " + self.output())

    def serving(self):
        try:
            return "pods" in os.listdir(self.mp)
        except OSError:
            return False

    def output(self):
        self.out.flush()
        self.out.seek(0)
        return self.out.read()

    def read(self, rel):
        with open(os.path.join(self.mp, rel)) as f:
            return f.read()

    def write(self, rel, text):
        with open(os.path.join(self.mp, rel), "w") as f:
            f.write(text)

    def stop(self):
        if mounted(self.mp) or err_of(lambda: os.stat(self.mp)) == errno.ENOTCONN:
            for cmd in (["fusermount3", "-u", self.mp], ["fusermount3", "-u", "-z", self.mp]):
                if subprocess.run(cmd, stderr=subprocess.DEVNULL).returncode == 0:
                    break
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture
def daemons():
    started = []
    yield started
    for d in started:
        d.stop()
        assert "ERROR: AddressSanitizer" not in d.output(), d.output()[-4000:]
        assert "runtime error:" not in d.output(), d.output()[-4000:]


def test_restart_after_kill9_on_the_same_mount_point(make_api, certs, tmp_path, daemons):
    api = make_api()
    mp, state, home = tmp_path / "mnt", tmp_path / "state", tmp_path / "home"
    mp.mkdir()
    home.mkdir()
    out = tmp_path / "stderr"
    soon, later, leased = add(api, "soon"), add(api, "later"), add(api, "leased")
    d1 = Daemon(api, certs, mp, state, home, out)
    daemons.append(d1)
    d1.write("pods/soon/deadline", "+3s\n")   # falls due while primefs is dead
    # Taken before the write: the guard's due time is not earlier (a
    # busy machine may return from the write seconds later).
    later_due = time.time() + 15
    d1.write("pods/later/deadline", "+15s\n")  # falls due after the restart
    holder = os.open(os.path.join(mp, "pods/leased/lease"), os.O_WRONLY)  # held...
    d1.proc.kill()
    d1.proc.wait()
    # The dead mount is there: every access fails until someone unmounts.
    assert err_of(lambda: os.listdir(mp)) == errno.ENOTCONN
    time.sleep(4)
    assert not ok_deletes(api, soon)  # nobody was there to fire it

    # Started again on the same mount point, with no fusermount3 first.
    d2 = Daemon(api, certs, mp, state, home, out)
    daemons.append(d2)
    assert "dead mount" in d2.output()
    assert wait_for(lambda: ok_deletes(api, soon)), d2.read("log")
    # ...at the crash: its holder lost it then, so it goes after the grace.
    assert wait_for(lambda: ok_deletes(api, leased)), d2.read("log")
    err_of(lambda: os.close(holder))  # its flush goes to the dead connection
    if time.time() < later_due - 1:
        assert not ok_deletes(api, later)  # not before its time
    assert wait_for(lambda: ok_deletes(api, later)), d2.read("log")
    assert time.time() >= later_due - 1
    log = d2.read("log")
    assert "deadline guard fired" in log and "soon" in log and "later" in log
    assert "dead mount" in log
    assert d2.stop() == 0
    assert not mounted(mp)


def test_stop_by_sigterm_unmounts_and_names_the_armed_guards(make_api, certs, tmp_path,
                                                             daemons):
    """A unit's stop is a SIGTERM: primefs unmounts, exits 0, and its stderr
    (the journal, under systemd) names each pod with guards still armed and
    what they are; fusermount3 -u alone prints nothing of it."""
    api = make_api()
    mp, state, home = tmp_path / "mnt", tmp_path / "state", tmp_path / "home"
    mp.mkdir()
    home.mkdir()
    add(api, "capped")
    d = Daemon(api, certs, mp, state, home, tmp_path / "stderr")
    daemons.append(d)
    d.write("pods/demo/deadline", "+2h\n")
    due = d.read("pods/demo/deadline").strip()
    d.write("pods/capped/max_cost", "25\n")
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(HANG) == 0
    assert not mounted(mp)
    out = d.output()
    assert "armed guards" in out
    assert f"demo (deadline {due})" in out, out
    assert "capped (max_cost 25 USD)" in out, out


def test_log_reads_the_same_after_a_remount(make_api, certs, tmp_path, daemons):
    api = make_api()
    mp, state, home = tmp_path / "mnt", tmp_path / "state", tmp_path / "home"
    mp.mkdir()
    home.mkdir()
    d1 = Daemon(api, certs, mp, state, home, tmp_path / "stderr")
    daemons.append(d1)
    # A refused template leaves its reason in log.
    assert err_of(lambda: d1.write("config", "no_such_key = 1\n")) == errno.EINVAL
    line = next(l for l in d1.read("log").splitlines() if "no_such_key" in l)
    assert d1.stop() == 0
    assert (state / "log").stat().st_mode & 0o777 == 0o600
    d2 = Daemon(api, certs, mp, state, home, tmp_path / "stderr")
    daemons.append(d2)
    lines = d2.read("log").splitlines()
    assert line in lines
    # this mount's lines come after the old ones
    assert lines.index(line) < max(i for i, l in enumerate(lines) if "mount /: API" in l)


def daemon_pids(mp):
    """The pids of primefs processes serving mp (started by this test)."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                args = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if args and args[0].endswith(b"primefs") and str(mp).encode() in args:
                pids.append(int(d))
    return pids


def fstab_mount(api, certs, tmp_path, cmd_of):
    """Mounts with cmd_of(mp, options, env), checks the mount serves, is
    fuse.primefs, and goes with fusermount3 -u, daemon and all."""
    mp, state, home = tmp_path / "mnt", tmp_path / "state", tmp_path / "home"
    mp.mkdir()
    home.mkdir()
    env = env_for(api, home)
    opts = f"defaults,_netdev,state={state},cafile={certs['ca_pem']}"
    try:
        r = subprocess.run(cmd_of(mp, opts, env), env=env, capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        assert mounted(mp)
        assert "demo" in os.listdir(mp / "pods")
        with open("/proc/self/mountinfo") as f:
            line = next(l for l in f if l.split()[4] == str(mp))
        assert " - fuse.primefs " in line, line
        r = subprocess.run(["fusermount3", "-u", str(mp)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert wait_for(lambda: not daemon_pids(mp)), "the daemon did not exit"
    finally:
        if mounted(mp):
            subprocess.run(["umount", "-l", str(mp)])
        for pid in daemon_pids(mp):
            os.kill(pid, signal.SIGTERM)


def test_fstab_line_through_mount_fuse3(make_api, certs, tmp_path):
    """An /etc/fstab line `primefs MP fuse.primefs defaults,_netdev,... 0 0`:
    mount(8) runs exactly this (/sbin/mount.fuse SOURCE MP -o OPTS -t
    fuse.primefs), and mount.fuse3 runs `primefs` found on PATH with the
    options it passes (rw,dev,suid; _netdev dropped). mount(8) itself runs
    helpers without PATH (so /usr/bin and /usr/local/bin, where primefs is
    installed): here the build directory comes first on PATH."""
    api = make_api()

    def cmd(mp, opts, env):
        env["PATH"] = f"{BUILD.resolve()}:{env.get('PATH', '/usr/bin:/bin')}"
        return ["/sbin/mount.fuse", "primefs", str(mp), "-o", opts, "-t", "fuse.primefs"]
    fstab_mount(api, certs, tmp_path, cmd)


def test_fstab_line_mounts_with_mount(make_api, certs, tmp_path):
    """The same through mount(8) reading an fstab (a file of its own: `mount
    -T`), in the form that names the program (`PROGRAM#SOURCE`, type fuse)
    since mount(8) drops PATH."""
    api = make_api()

    def cmd(mp, opts, env):
        fstab = tmp_path / "fstab"
        fstab.write_text(f"{PRIMEFS.resolve()}#primefs {mp} fuse {opts} 0 0\n")
        return ["mount", "-T", str(fstab), str(mp)]
    fstab_mount(api, certs, tmp_path, cmd)


def test_fstab_line_of_type_fuse_primefs_with_mount(make_api, certs, tmp_path):
    """The line README gives, `primefs MP fuse.primefs defaults,_netdev 0 0`,
    mounted by `mount MP` as a user would: mount(8) runs mount.fuse3
    without PATH, so `primefs` must be where it is installed. In a private
    mount namespace (unshare -m, no container) /usr/local/bin is this
    build's for the while; the mount lives and is checked there."""
    if not shutil.which("unshare"):
        pytest.skip("unshare is not installed")
    api = make_api()
    mp, state, home = tmp_path / "mnt", tmp_path / "state", tmp_path / "home"
    bindir = tmp_path / "bin"
    for d in (mp, home, bindir):
        d.mkdir()
    os.symlink(PRIMEFS.resolve(), bindir / "primefs")
    fstab = tmp_path / "fstab"
    fstab.write_text(f"primefs {mp} fuse.primefs "
                     f"defaults,_netdev,state={state},cafile={certs['ca_pem']} 0 0\n")
    script = f"""set -e
mount --bind {bindir} /usr/local/bin
mount -T {fstab} {mp}
ls {mp}/pods
grep " {mp} " /proc/self/mountinfo
fusermount3 -u {mp}
"""
    try:
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                           env=env_for(api, home), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "demo" in r.stdout.split()
        assert " - fuse.primefs primefs " in r.stdout
        assert wait_for(lambda: not daemon_pids(mp)), "the daemon did not exit"
    finally:
        for pid in daemon_pids(mp):
            os.kill(pid, signal.SIGTERM)


UNITS = {"system": "primefs@.service.system", "user": "primefs@.service.user"}


def unit_keys(text):
    keys = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, _, v = line.partition("=")
            keys.setdefault(k.strip(), []).append(v.strip())
    return keys


@pytest.mark.parametrize("kind", ["system", "user"])
def test_systemd_unit_verifies(kind, tmp_path):
    """The unit as meson configured it, with ExecStart pointed at this build
    (verify checks that the program exists) and man pointed at this man
    page, passes `systemd-analyze verify` without a word; no systemd as PID
    1 is needed for that."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    text = (BUILD / UNITS[kind]).read_text()
    keys = unit_keys(text)
    exec_start = keys["ExecStart"][0]
    assert exec_start.split()[0].endswith("/bin/primefs")
    assert " -f %f " in exec_start + " "  # foreground, at the escaped mount point
    assert keys["Restart"] == ["on-failure"]
    assert "network-online.target" in keys["After"][0]
    if kind == "system":
        assert "network-online.target" in keys["Wants"][0]
    assert any("fusermount3 -u" in v for v in keys["ExecStopPost"])  # no dead mount left
    units = tmp_path / "units"
    (tmp_path / "man" / "man1").mkdir(parents=True)
    shutil.copy(ROOT / "man" / "primefs.1", tmp_path / "man" / "man1")
    units.mkdir()
    inst = units / "primefs@mnt-prime.service"
    inst.write_text(text.replace(exec_start.split()[0], str(PRIMEFS.resolve())))
    rt = tmp_path / "rt"
    rt.mkdir(mode=0o700)
    env = dict(os.environ, MANPATH=str(tmp_path / "man"), XDG_RUNTIME_DIR=str(rt))
    cmd = ["systemd-analyze"] + (["--user"] if kind == "user" else []) + ["verify", str(inst)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        r.stdout + r.stderr
    # and it is not a check that passes anything: a bad key is reported
    inst.write_text(text.replace("Type=simple", "Type=simpl").replace(
        exec_start.split()[0], str(PRIMEFS.resolve())))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert "simpl" in r.stdout + r.stderr


def test_meson_installs_the_units(tmp_path):
    r = subprocess.run(["meson", "introspect", str(BUILD), "--installed"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    dests = r.stdout
    assert "lib/systemd/system/primefs@.service" in dests
    assert "lib/systemd/user/primefs@.service" in dests
