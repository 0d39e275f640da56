"""The command line: --version, --help, options, and the argument form an
fstab line of type fuse.primefs produces."""

import os
import shutil
import subprocess
import time

from conftest import KEY, PRIMEFS, mounted


def test_version_names_the_four_libraries():
    r = subprocess.run([str(PRIMEFS), "--version"], capture_output=True, text=True)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].startswith("primefs ")
    for lib in ("libfuse", "libcurl", "json-c", "libssh2"):
        assert any(l.startswith(lib + " ") for l in lines), lib


def test_help_lists_every_option():
    r = subprocess.run([str(PRIMEFS), "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for opt in ("cafile=", "config=", "key_file=", "known_hosts=", "ssh_key=",
                "pods_ttl=", "offers_ttl=", "timeout=", "ready_timeout="):
        assert opt in r.stdout, opt
    assert "PRIME_API_KEY" in r.stdout


def test_man_page_names_every_option():
    man = (PRIMEFS.parent.parent / "man" / "primefs.1")
    text = man.read_text() if man.exists() else ""
    for opt in ("cafile=", "config=", "key_file=", "known_hosts=", "ssh_key=",
                "pods_ttl=", "offers_ttl=", "timeout=", "ready_timeout="):
        assert opt.replace("=", "") in text, opt


def test_fstab_form_source_then_mountpoint(api, make_mount):
    # mount.fuse3 runs "primefs SOURCE MOUNTPOINT -o ...".
    m = make_mount(api, source="primefs")
    assert "demo" in os.listdir(m.p("pods"))


def test_bad_option_values_refused(tmp_path):
    r = subprocess.run([str(PRIMEFS), "-f", str(tmp_path), "-o", "timeout=0"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "timeout" in r.stderr


def test_plain_http_only_to_loopback(tmp_path):
    # A listener on a non-loopback address of this machine: nothing may
    # reach it, and the mount is refused with a clear reason.
    import socket
    ips = [ip for ip in subprocess.run(["hostname", "-I"], capture_output=True,
                                       text=True).stdout.split()
           if "." in ip and not ip.startswith("127.")]
    host = ips[0] if ips else "192.0.2.1"
    srv = socket.socket()
    srv.bind((host if ips else "0.0.0.0", 0))
    srv.listen(4)
    srv.settimeout(0.5)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for base in (f"http://{host}:{srv.getsockname()[1]}",
                 f"http://user@{host}:{srv.getsockname()[1]}/api/v1",
                 "http://localhost.evil.example", "ftp://127.0.0.1"):
        env = dict(os.environ, PRIME_API_KEY="test-key", PRIME_API_BASE_URL=base,
                   HOME=str(tmp_path))
        try:
            r = subprocess.run([str(PRIMEFS), "-f", str(mnt)], env=env,
                               capture_output=True, text=True, timeout=10)
        finally:
            if mounted(mnt):  # it mounted after all (the test fails)
                subprocess.run(["umount", "-l", str(mnt)])
        assert r.returncode != 0, base
        assert "base URL" in r.stderr and "https://" in r.stderr, r.stderr
        assert "test-key" not in r.stderr
    try:
        srv.accept()
        assert False, "a connection reached the non-loopback host"
    except (socket.timeout, TimeoutError):
        pass
    srv.close()


def test_plain_http_to_localhost_works(make_api, make_mount):
    api = make_api(tls=False)
    m = make_mount(api, base=f"http://localhost:{api.port}")
    assert m.read("balance").strip()


def test_key_not_in_environ_after_start(mnt):
    environ = open(f"/proc/{mnt.proc.pid}/environ", "rb").read()
    assert b"HOME=" in environ  # it is the daemon's environment
    assert KEY.encode() not in environ
    assert mnt.read("balance").strip()  # and the key still works


def _daemon_of(mountpoint):
    """The pid of the primefs process serving mountpoint."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            argv = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"primefs") and str(mountpoint).encode() in argv:
            return int(d)
    return None


def test_background_mount_with_relative_paths(api, certs, tmp_path):
    # Relative config= and cafile=: a mount in the background (fuse_main
    # changes to /) must still find them.
    work = tmp_path / "work"
    (work / "etc").mkdir(parents=True)
    shutil.copy(certs["ca_pem"], work / "etc" / "ca.pem")
    (work / "etc" / "config").write_text("gpu_type = H100_80GB\n")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIME_")}
    env.update(PRIME_API_KEY=KEY, PRIME_API_BASE_URL=api.base, HOME=str(tmp_path))
    r = subprocess.run([os.path.abspath(PRIMEFS), str(mnt), "-o",
                        "config=etc/config,cafile=etc/ca.pem,known_hosts=etc/kh"],
                       cwd=work, env=env, capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    pid = None
    try:
        assert mounted(mnt)
        pid = _daemon_of(mnt)
        assert pid
        assert (mnt / "config").read_text() == "gpu_type = H100_80GB\n"
        assert (mnt / "balance").read_text().strip()  # TLS with the relative cafile
        assert "demo" in os.listdir(mnt / "pods")
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)])
        if mounted(mnt):
            subprocess.run(["umount", "-l", str(mnt)])
    deadline = time.time() + 10  # not a hang
    while pid and os.path.exists(f"/proc/{pid}") and time.time() < deadline:
        time.sleep(0.05)
    assert not pid or not os.path.exists(f"/proc/{pid}"), "the daemon did not exit"
