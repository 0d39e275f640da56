"""pods/<pod>/fs and home (DESIGN.md "Files on a pod") on a real mount: the
fake API's pods are played by a real OpenSSH sshd on 127.0.0.1 (the `rig`
fixture), logged in as root, so the pod's files are this machine's and each
test works in a directory of its own under root's home (`work`), checked
with local system calls."""

import errno
import os
import pwd
import shutil
import stat
import subprocess
import time
import uuid

import pytest

from conftest import sanitized

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="sshd needs root"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/sshd"), reason="no OpenSSH server"),
]

HOME = pwd.getpwuid(0).pw_dir


@pytest.fixture
def work(rig):
    """(path through the mount, the same directory on the pod)."""
    name = "podfs-" + uuid.uuid4().hex[:8]
    local = os.path.join(HOME, name)
    os.mkdir(local)
    yield rig.p("pods", "demo", "home", name), local
    shutil.rmtree(local, ignore_errors=True)


def accepted(pod):
    return pod.log_text().count("Accepted publickey")


def sh(cmd, **kw):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, (cmd, r.stdout, r.stderr)
    return r.stdout


def err(fn, *a):
    try:
        fn(*a)
    except OSError as e:
        return e.errno
    return 0


def test_links_hidden_roots_and_no_connection(rig, pod):
    pod_dir = rig.p("pods", "demo")
    names = os.listdir(pod_dir)
    assert "fs" in names and "home" in names
    assert ".fs" not in names and ".home" not in names
    assert os.readlink(os.path.join(pod_dir, "fs")) == ".fs"
    assert os.readlink(os.path.join(pod_dir, "home")) == ".home"
    st = os.stat(os.path.join(pod_dir, ".home"))
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
    os.lstat(os.path.join(pod_dir, "fs"))
    # A crawl of the whole mount opens no SSH connection.
    sh(f"ls -lR {rig.path} >/dev/null")
    sh(f"find {rig.path} >/dev/null")
    subprocess.run(f"grep -r nothing-here {rig.path}", shell=True, capture_output=True,
                   timeout=120)
    sh(f"du -s {rig.path} >/dev/null")
    assert accepted(pod) == 0
    assert rig.stats().get("ssh_sessions", 0) == 0
    # A path through the links does.
    assert os.path.isdir(os.path.join(pod_dir, "home", "."))
    assert "etc" in os.listdir(os.path.join(pod_dir, "fs"))
    assert accepted(pod) == 1


def test_home_is_the_pod_users_home(rig, work):
    mp, local = work
    with open(os.path.join(local, "hello"), "w") as f:
        f.write("from the pod\n")
    assert open(os.path.join(mp, "hello")).read() == "from the pod\n"
    assert sorted(os.listdir(mp)) == ["hello"]


def test_every_operation(rig, work):
    mp, local = work
    p = lambda *a: os.path.join(mp, *a)  # noqa: E731
    q = lambda *a: os.path.join(local, *a)  # noqa: E731
    os.makedirs(p("a", "b", "c"))
    assert os.path.isdir(q("a", "b", "c"))
    with open(p("a", "f"), "w") as f:
        f.write("hello world\n")
    assert open(q("a", "f")).read() == "hello world\n"
    st = os.stat(p("a", "f"))
    assert st.st_size == 12 and stat.S_ISREG(st.st_mode)
    # append, truncate
    with open(p("a", "f"), "a") as f:
        f.write("more\n")
    assert open(q("a", "f")).read() == "hello world\nmore\n"
    os.truncate(p("a", "f"), 5)
    assert open(q("a", "f")).read() == "hello"
    with open(p("a", "f"), "r+") as f:
        f.truncate(2)
    assert open(p("a", "f")).read() == "he"
    # create mode after the umask, whatever the pod's umask
    old = os.umask(0o027)
    try:
        fd = os.open(p("m"), os.O_CREAT | os.O_WRONLY, 0o666)
        os.close(fd)
        os.mkdir(p("d"), 0o777)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(q("m")).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(q("d")).st_mode) == 0o750
    # chmod, chown (numeric), utimens keeping the other time
    os.chmod(p("m"), 0o604)
    assert stat.S_IMODE(os.stat(q("m")).st_mode) == 0o604
    os.chown(p("m"), 1234, 5678)
    st = os.stat(q("m"))
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    assert (os.stat(p("m")).st_uid, os.stat(p("m")).st_gid) == (1234, 5678)
    os.utime(p("m"), (1000000000, 1200000000))
    assert (os.stat(q("m")).st_atime, os.stat(q("m")).st_mtime) == (1000000000, 1200000000)
    os.utime(p("m"), ns=(1100000000 * 10**9, os.stat(q("m")).st_mtime_ns))
    sh(f"touch -a -d @1300000000 {p('m')}")
    st = os.stat(q("m"))
    assert (st.st_atime, st.st_mtime) == (1300000000, 1200000000)
    sh(f"touch -m -d @1250000000.5 {p('m')}")
    st = os.stat(q("m"))
    assert (st.st_atime, st.st_mtime) == (1300000000, 1250000000)
    # rename replaces the target; the moved file keeps working
    with open(p("x"), "w") as f:
        f.write("x")
    with open(p("y"), "w") as f:
        f.write("y")
    os.rename(p("x"), p("y"))
    assert open(p("y")).read() == "x" and not os.path.exists(q("x"))
    os.rename(p("a"), p("a2"))
    assert open(p("a2", "f")).read() == "he"
    assert os.stat(p("a2", "b", "c")).st_mode & stat.S_IFDIR
    # symlink as written, readlink; hard link is one file
    os.symlink("a2/f", p("rel"))
    assert os.readlink(q("rel")) == "a2/f" and os.readlink(p("rel")) == "a2/f"
    assert open(p("rel")).read() == "he"
    os.link(p("y"), p("y2"))
    assert os.stat(q("y")).st_ino == os.stat(q("y2")).st_ino
    # unlink, rmdir
    os.unlink(p("y2"))
    assert not os.path.exists(q("y2"))
    os.rmdir(p("a2", "b", "c"))
    assert not os.path.exists(q("a2", "b", "c"))
    # statfs, fsync
    assert os.statvfs(p(".")).f_blocks > 0
    fd = os.open(p("s"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"sync")
    os.fsync(fd)
    assert open(q("s"), "rb").read() == b"sync"
    os.close(fd)
    # O_EXCL
    assert err(os.open, p("s"), os.O_CREAT | os.O_EXCL | os.O_WRONLY) == errno.EEXIST


def test_errnos(rig, work):
    mp, local = work
    p = lambda *a: os.path.join(mp, *a)  # noqa: E731
    os.mkdir(p("d"))
    open(p("d", "f"), "w").close()
    assert err(os.stat, p("nope")) == errno.ENOENT
    assert err(os.mkdir, p("d")) == errno.EEXIST
    assert err(os.listdir, p("d", "f")) == errno.ENOTDIR
    assert err(os.rmdir, p("d")) == errno.ENOTEMPTY
    assert err(open, p("d"), "w") == errno.EISDIR
    assert err(os.stat, p("x" * 256)) == errno.ENAMETOOLONG
    assert err(os.mkdir, p("x" * 256)) == errno.ENAMETOOLONG
    assert err(os.mknod, p("fifo"), stat.S_IFIFO | 0o644) == errno.EPERM
    assert err(os.mknod, p("sock"), stat.S_IFSOCK | 0o644) == errno.EPERM
    assert err(os.setxattr, p("d", "f"), "user.x", b"1") in (errno.ENOTSUP, errno.EOPNOTSUPP)
    assert err(os.getxattr, p("d", "f"), "user.x") in (errno.ENOTSUP, errno.EOPNOTSUPP)
    # mkdir -p makes directories on the pod; nothing is rented
    sh(f"mkdir -p {p('a', 'b', 'c')}")
    assert os.path.isdir(os.path.join(local, "a", "b", "c"))
    assert rig.api.counts().get("POST /api/v1/pods/", 0) == 0


def test_close_returns_the_write_error(rig, work, tmp_path):
    """A write the pod cannot take is returned by close (here: a file the
    pod made read-only after open is still writable through its handle,
    so use a full disk instead: a small tmpfs on the pod)."""
    mp, local = work
    full = os.path.join(local, "full")
    os.mkdir(full)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", full]).returncode:
        pytest.skip("cannot mount a tmpfs")
    try:
        fd = os.open(os.path.join(mp, "full", "big"), os.O_CREAT | os.O_WRONLY, 0o644)
        e = 0
        try:
            os.write(fd, b"x" * (1 << 20))
        except OSError as ex:
            e = ex.errno
        try:
            os.close(fd)
        except OSError as ex:
            e = e or ex.errno
        assert e == errno.ENOSPC
    finally:
        subprocess.run(["umount", "-l", full])


def test_tools(rig, work, tmp_path):
    mp, local = work
    src = tmp_path / "src"
    for d in range(5):
        (src / f"d{d}").mkdir(parents=True)
        for i in range(20):
            (src / f"d{d}" / f"f{i}").write_bytes(os.urandom(100 + 97 * i))
    os.symlink("d0/f1", src / "link")
    os.utime(src / "d1" / "f3", (1000000000, 1000000000))
    sh(f"cp -a {src} {mp}/up")
    sh(f"diff -r {src} {local}/up")
    sh(f"cp -a {mp}/up {tmp_path}/back")
    sh(f"diff -r {src} {tmp_path}/back")
    assert os.stat(f"{tmp_path}/back/d1/f3").st_mtime == 1000000000
    assert os.readlink(f"{tmp_path}/back/link") == "d0/f1"
    if shutil.which("rsync"):
        sh(f"rsync -a {src}/ {mp}/rs/")
        sh(f"diff -r {src} {local}/rs")
        out = sh(f"rsync -a --itemize-changes {src}/ {mp}/rs/")
        assert out == "", out
    sh(f"tar -C {src} -cf {tmp_path}/t.tar .")
    os.mkdir(f"{mp}/tar")
    sh(f"tar -C {mp}/tar -xf {tmp_path}/t.tar")
    sh(f"diff -r {src} {local}/tar")
    found = sh(f"find {mp}/up -type f | wc -l")
    assert int(found) == 100
    (src / "d2" / "needle").write_text("a needle here\n")
    sh(f"cp {src}/d2/needle {mp}/up/d2/")
    assert "needle" in sh(f"grep -r needle {mp}/up")
    if shutil.which("git"):
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t", HOME=str(tmp_path))
        sh(f"cd {mp}/up && git init -q && git add -A && git commit -qm one", env=env)
        assert "one" in sh(f"cd {mp}/up && git log --oneline", env=env)
        sh(f"cd {local}/up && git status --porcelain", env=env)


def test_close_to_open(rig, work):
    mp, local = work
    with open(os.path.join(mp, "f"), "w") as f:
        f.write("one")
    assert open(os.path.join(mp, "f")).read() == "one"
    with open(os.path.join(local, "f"), "w") as f:  # on the pod
        f.write("two, longer")
    # The next open reads the new contents (the size within fs_ttl).
    deadline = time.time() + 10
    while open(os.path.join(mp, "f")).read() != "two, longer":
        assert time.time() < deadline
        time.sleep(0.1)
    # What this mount wrote shows at once.
    with open(os.path.join(mp, "f"), "w") as f:
        f.write("three")
    assert open(os.path.join(mp, "f")).read() == "three"
    os.unlink(os.path.join(mp, "f"))
    assert not os.path.exists(os.path.join(mp, "f"))


def test_symlink_rule(rig, work):
    mp, local = work
    name = os.path.basename(local)
    os.symlink("/etc/hostname", os.path.join(local, "abs"))
    os.mkdir(os.path.join(local, "sub"))
    os.symlink("/etc", os.path.join(local, "sub", "abs2"))
    os.symlink("/", os.path.join(local, "root"))
    assert os.readlink(os.path.join(mp, "abs")) == "../../.fs/etc/hostname"
    assert os.readlink(os.path.join(mp, "sub", "abs2")) == "../../../.fs/etc"
    assert os.path.realpath(os.path.join(mp, "abs")) == rig.p("pods", "demo", ".fs", "etc",
                                                                 "hostname")
    fsp = rig.p("pods", "demo", "fs", HOME.lstrip("/"), name)
    assert os.readlink(os.path.join(fsp, "abs")) == "../" * (HOME.count("/") + 1) + "etc/hostname"
    assert os.readlink(os.path.join(fsp, "root")).rstrip("/") in ("../" * (HOME.count("/") + 1)).rstrip("/")
    # Made through the mount: stored as written.
    os.symlink("/some/where", os.path.join(mp, "made"))
    assert os.readlink(os.path.join(local, "made")) == "/some/where"


def test_allow_other_only_the_owner(pod, keys, make_api, make_mount, tmp_path):
    api = make_api("--ssh", f"root@127.0.0.1:{pod.port}",
                   "--pending-secs", "1", "--install-secs", "1")
    m = make_mount(api, options=(f"ssh_key={keys[0]}", f"known_hosts={tmp_path / 'kh'}",
                                 "ready_timeout=20", "timeout=5", "allow_other"),
                   traversable=True)
    assert os.path.isdir(m.p("pods/demo/home/."))
    for path in ("pods/demo/home/", "pods/demo/fs/tmp", "pods/demo/.fs/etc/hostname"):
        r = subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c", f"cat {m.p(path)}; ls {m.p(path)}"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "Permission denied" in r.stderr, r


def test_pod_that_will_never_start(rig, pod):
    for name in ("a40-1", "error-1"):  # STOPPED, ERROR
        assert err(os.listdir, rig.p("pods", name, "home/")) == errno.ENOTCONN
        assert err(open, rig.p("pods", name, "fs/etc/hostname")) == errno.ENOTCONN
        assert os.path.isdir(rig.p("pods", name, ".home"))  # stat stays local
    assert accepted(pod) == 0


def test_waits_for_a_starting_pod(rig):
    rig.write("config", "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    os.mkdir(rig.p("pods/fresh"))
    assert rig.read("pods/fresh/status") == "PENDING\n"
    assert os.path.exists(rig.p("pods/fresh/fs/etc/hostname"))  # waited
    assert "waiting for the pod" in rig.log()
    assert rig.read("pods/fresh/status") == "ACTIVE\n"


def test_close_to_open_through_a_job(rig, work):
    mp, local = work
    with open(os.path.join(mp, "f"), "w") as f:
        f.write("mine")
    with open(rig.p("pods/demo/run"), "w") as f:
        f.write(f"printf theirs > {local}/f\n")
    assert rig.read("pods/demo/exit") == "0\n"
    deadline = time.time() + 10
    while open(os.path.join(mp, "f")).read() != "theirs":
        assert time.time() < deadline
        time.sleep(0.1)


def test_reconnect_mid_read(rig, work, pod):
    mp, local = work
    data = os.urandom(32 << 20)
    with open(os.path.join(local, "big"), "wb") as f:
        f.write(data)
    got = bytearray()
    with open(os.path.join(mp, "big"), "rb", buffering=0) as f:
        got += f.read(1 << 20)
        pod.restart()
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            got += b
    assert bytes(got) == data


def vmhwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])


def test_big_file_memory_bounded(rig, work, tmp_path):
    mp, local = work
    pid = rig.proc.pid
    sh(f"head -c 1G /dev/zero > {mp}/big")
    assert os.stat(os.path.join(local, "big")).st_size == 1 << 30
    sh(f"cmp {mp}/big {local}/big")
    # Bounded by the read-ahead and write-behind windows (8 MiB a file),
    # not the file: well under its 1 GiB. (Sanitizers keep freed memory.)
    print("VmHWM after 1 GiB up and back: %d KiB" % vmhwm(pid))
    if not sanitized():
        assert vmhwm(pid) < 128 * 1024, vmhwm(pid)


def test_unlinked_file_still_open(rig, work):
    """An open file whose name is gone still answers fstat and ftruncate
    through its handle; a new file of the same name is another file."""
    mp, local = work
    fd = os.open(os.path.join(mp, "f"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"hello")
        os.unlink(os.path.join(mp, "f"))
        assert not os.path.exists(os.path.join(local, "f"))
        with open(os.path.join(mp, "f"), "w") as g:
            g.write("new")
        assert os.fstat(fd).st_size == 5
        os.ftruncate(fd, 2)
        assert os.fstat(fd).st_size == 2
        assert os.pread(fd, 10, 0) == b"he"
        assert open(os.path.join(mp, "f")).read() == "new"
    finally:
        os.close(fd)
