"""Attributes of a pod's files kept fs_ttl (DESIGN.md "Files on a pod";
src/ssh/sftp.h's rule): a lookup answers from what a listing or a stat
brought while it is younger than fs_ttl, never older; what this mount
changes shows at once; a walk in listing order finds the stats it needs
sent ahead. The kernel keeps entries too, so a lookup that must reach
primefs goes through a path the kernel has not seen: the same pod
directory under fs/<home> as well as home (one client, one pod path)."""

import os
import pwd
import shutil
import subprocess
import time
import uuid

import pytest

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="sshd needs root"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/sshd"), reason="no OpenSSH server"),
]

HOME = pwd.getpwuid(0).pw_dir


@pytest.fixture
def podmount(pod, keys, make_api, make_mount, tmp_path):
    """mount(fs_ttl) -> (mount, home path, fs path, the pod's directory):
    one directory on the pod, through home and through fs."""
    api = make_api("--ssh", f"root@127.0.0.1:{pod.port}",
                   "--pending-secs", "1", "--install-secs", "1")
    made = []

    def mount(fs_ttl):
        m = make_mount(api, options=(f"ssh_key={keys[0]}",
                                     f"known_hosts={tmp_path / 'known_hosts'}",
                                     "ready_timeout=20", "timeout=5", f"fs_ttl={fs_ttl}"))
        name = "podattrs-" + uuid.uuid4().hex[:8]
        local = os.path.join(HOME, name)
        os.mkdir(local)
        made.append(local)
        return (m, m.p("pods", "demo", "home", name),
                m.p("pods", "demo", "fs", HOME.lstrip("/"), name), local)

    yield mount
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def sh(cmd):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (cmd, r.stdout, r.stderr)
    return r.stdout


def test_kept_fs_ttl_and_never_older(podmount):
    ttl = 4
    m, home, fs, local = podmount(ttl)
    write(os.path.join(local, "f"), "a")
    os.stat(fs)  # the connection made, fs/<home>/<dir> known (not listed)
    t0 = time.monotonic()
    assert os.listdir(home) == ["f"]  # the listing, kept
    write(os.path.join(local, "f"), "changed on the pod")
    # Kept: a lookup the kernel sends (through fs, a path it has not
    # seen) is answered from the listing while that is younger than
    # fs_ttl, and the kernel keeps it only what is left of fs_ttl.
    time.sleep(max(0, t0 + ttl / 2 - time.monotonic()))
    size = os.lstat(os.path.join(fs, "f")).st_size
    if time.monotonic() - t0 < ttl - 0.5:
        assert size == 1
    # Never older than fs_ttl: once it passed, the change shows.
    time.sleep(max(0, t0 + ttl + 0.2 - time.monotonic()))
    assert os.lstat(os.path.join(fs, "f")).st_size == 18
    assert os.lstat(os.path.join(home, "f")).st_size == 18


def test_own_changes_show_at_once(podmount):
    """With a long fs_ttl: each change through home is seen at once by a
    lookup through fs (which reaches the kept attributes)."""
    m, home, fs, local = podmount(60)
    h = lambda *a: os.path.join(home, *a)  # noqa: E731
    f = lambda *a: os.path.join(fs, *a)  # noqa: E731
    for n in ("w", "a", "c", "t", "m", "x"):
        write(os.path.join(local, n), "12345")
    os.mkdir(os.path.join(local, "sub"))
    write(os.path.join(local, "sub", "inner"), "in")
    os.listdir(home)
    os.listdir(h("sub"))  # both listings kept
    sh(f"printf more >> {h('w')}")
    os.rename(h("a"), h("b"))
    os.unlink(h("c"))
    os.truncate(h("t"), 2)
    os.chmod(h("m"), 0o600)
    os.utime(h("x"), (1000000000, 1000000000))
    os.mkdir(h("d"))
    os.symlink("w", h("s"))
    os.link(h("w"), h("l"))
    write(h("new"), "fresh")
    # A directory renamed and another made in its place: nothing of the
    # old listing answers for the new one.
    os.rename(h("sub"), h("sub2"))
    os.mkdir(h("sub"))
    assert os.lstat(f("w")).st_size == 9
    assert not os.path.lexists(f("a")) and os.lstat(f("b")).st_size == 5
    assert not os.path.lexists(f("c"))
    assert os.lstat(f("t")).st_size == 2
    assert os.lstat(f("m")).st_mode & 0o777 == 0o600
    assert os.lstat(f("x")).st_mtime == 1000000000
    assert os.path.isdir(f("d"))
    assert os.readlink(f("s")) == "w"
    assert os.lstat(f("l")).st_size == 9
    assert open(f("new")).read() == "fresh"
    assert not os.path.lexists(f("sub", "inner"))
    assert open(f("sub2", "inner")).read() == "in"


def test_a_walk_finds_its_stats_sent_ahead(podmount, tmp_path):
    """A directory's listing gone stale, a walk of its names in listing
    order (xargs stat) waits for the pod a few times, not once a file; and
    every size it shows is the file's."""
    ttl = 2
    m, home, fs, local = podmount(ttl)
    n = 200
    for i in range(n):
        write(os.path.join(local, f"f{i:03d}"), "x" * i)
    names = tmp_path / "names"
    sh(f"ls -U {home} > {names}")  # listed, in the pod's order
    time.sleep(ttl + 0.5)  # that listing (and the kernel's entries) stale
    before = m.stats()
    out = sh(f"cd {fs} && xargs -a {names} stat -c '%n %s'")
    after = m.stats()
    got = dict(line.split() for line in out.splitlines())
    assert got == {f"f{i:03d}": str(i) for i in range(n)}
    kept = after.get("podfs_attrs_kept", 0) - before.get("podfs_attrs_kept", 0)
    waited = after.get("podfs_attrs_waited", 0) - before.get("podfs_attrs_waited", 0)
    ahead = after.get("podfs_stats_ahead", 0) - before.get("podfs_stats_ahead", 0)
    print(f"kept {kept} waited {waited} ahead {ahead}")
    assert kept >= n // 2 and waited <= n // 4, (kept, waited, ahead)
    assert ahead >= n // 2


def test_a_new_connection_keeps_nothing(podmount, pod):
    m, home, fs, local = podmount(60)
    write(os.path.join(local, "f"), "a")
    write(os.path.join(local, "g"), "b")
    os.listdir(home)
    write(os.path.join(local, "f"), "changed on the pod")
    pod.restart()
    assert open(os.path.join(home, "g")).read() == "b"  # reconnected
    assert os.lstat(os.path.join(fs, "f")).st_size == 18


def test_a_long_walk_keeps_its_path(podmount):
    """A walk that outlasts fs_ttl many times over: the directories above
    it (which the kernel asks about again each time its entry expires)
    are stated again in the background, so the walk seldom waits."""
    m, home, fs, local = podmount(1)
    n = 300
    for i in range(n):
        write(os.path.join(local, f"f{i:03d}"), "x" * i)
    names = os.listdir(fs)
    before = m.stats()
    t0 = time.monotonic()
    for name in names:
        assert os.lstat(os.path.join(fs, name)).st_size == int(name[1:])
        time.sleep(0.02)
    took = time.monotonic() - t0
    after = m.stats()
    waited = after.get("podfs_attrs_waited", 0) - before.get("podfs_attrs_waited", 0)
    print(f"waited {waited} in {took:.1f}s")
    # Once everything the listing brought expired together (three waits:
    # the two directories above and a name); without the stats again,
    # those two directories are waited for anew each second.
    assert waited <= 3 + took / 3, (waited, took)


def test_fs_ttl_zero_keeps_nothing(podmount):
    m, home, fs, local = podmount(0)
    write(os.path.join(local, "f"), "a")
    assert os.listdir(home) == ["f"]
    write(os.path.join(local, "f"), "changed on the pod")
    assert os.lstat(os.path.join(home, "f")).st_size == 18
    assert os.lstat(os.path.join(fs, "f")).st_size == 18
    assert m.stats().get("podfs_attrs_kept", 0) == 0


def waits(m, before):
    return m.stats().get("podfs_attrs_waited", 0) - before.get("podfs_attrs_waited", 0)


def test_a_walk_by_listings_keeps_its_path_and_next_directory(podmount):
    """ls -l of one directory after another, for several fs_ttl: the
    walker reaches each directory by a name the kernel took from the
    parent's listing and looks nothing up until those names expire. Each
    listing is a step of the walk as a lookup is: the directories above
    it are stated again in the background, and the next directories stated
    ahead, so the walk waits at most once, not at each expiry."""
    m, home, fs, local = podmount(1)
    dirs = [f"d{i:02d}" for i in range(24)]
    for d in dirs:
        os.mkdir(os.path.join(local, d))
        for j in range(5):
            write(os.path.join(local, d, f"f{j}"), "x" * j)
    assert sorted(os.listdir(fs)) == dirs  # names and attributes: 1 s
    before = m.stats()
    t0 = time.monotonic()
    for d in dirs:
        out = sh(f"ls -l {os.path.join(fs, d)}")
        assert out.count(" f") == 5, out
        time.sleep(0.15)
    took = time.monotonic() - t0
    waited = waits(m, before)
    print(f"waited {waited} in {took:.1f}s")
    # Without: the two directories above and the next name, waited for
    # at each second's expiry (three or more a second).
    assert waited <= 1 + took / 4, (waited, took)


def test_a_walk_by_opens_keeps_its_path(podmount, tmp_path):
    """cat of one file after another in listing order, for several
    fs_ttl: an open is a step of the walk as a lookup is, so when the
    kernel's names expire the lookups find the directories above and the
    next names stated already."""
    m, home, fs, local = podmount(1)
    n = 60
    for i in range(n):
        write(os.path.join(local, f"f{i:03d}"), "x" * i)
    names = tmp_path / "names"
    sh(f"ls -U {fs} > {names}")  # listed (the kernel's names: 1 s)
    before = m.stats()
    t0 = time.monotonic()
    # Full paths: each open walks the directories above too.
    out = sh(f"while read -r f; do cat \"{fs}/$f\"; echo; sleep 0.05; done < {names}")
    took = time.monotonic() - t0
    assert sorted(out.split()) == sorted("x" * i for i in range(1, n))
    waited = waits(m, before)
    print(f"waited {waited} in {took:.1f}s")
    # Without: the two directories above and a name at the first expiry.
    assert took > 2 and waited <= 1, (waited, took)
