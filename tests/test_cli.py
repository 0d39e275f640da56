"""The command line: --version, --help, options, and the argument form an
fstab line of type fuse.primefs produces."""

import os
import shutil
import subprocess
import time

import pytest

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


# --- primefs --check: one line per check, "ok" or what to do; exit 0 only
# when every check is ok.

def check(api, tmp_path, *opts, env=None, key="test-key", ssh="ed25519", register=True):
    from sshd import make_key
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PRIME_", "SSH_AUTH"))}
    e.update(HOME=str(home), PRIME_API_BASE_URL=api.base if api else "https://127.0.0.1:9")
    if key:
        e["PRIME_API_KEY"] = key
    e.update(env or {})
    o = list(opts)
    if api and api.tls:
        o.append("cafile=" + str(api.ca))
    if ssh:
        (tmp_path / "keys").mkdir(exist_ok=True)
        path, pub = make_key(tmp_path / "keys", ssh)
        o.append("ssh_key=" + path)
        if api and register:  # as a user who registered it
            api.admin("ssh_key", {"name": "laptop", "publicKey": pub})
    if not any(x.startswith("state=") for x in o):
        state = tmp_path / "state"
        state.mkdir(mode=0o700, exist_ok=True)
        o.append(f"state={state}")
    r = subprocess.run([str(PRIMEFS), "--check", "-o", ",".join(o)], env=e,
                       capture_output=True, text=True, timeout=60)
    lines = r.stdout.splitlines()
    return r.returncode, lines, r.stdout + r.stderr


def line(lines, what):
    """The line of one check: its label follows a 6-column verdict."""
    return next((l for l in lines if l[6:].startswith(what)), "")


@pytest.fixture
def capi(make_api, certs):
    a = make_api()
    a.ca = certs["ca_pem"]
    return a


def test_check_all_ok(capi, tmp_path):
    rc, lines, out = check(capi, tmp_path)
    assert rc == 0, out
    for what in ("API key", "team", "SSH key", "state directory", "FUSE"):
        assert line(lines, what).startswith("ok "), out
    assert line(lines, "SSH key registered").startswith("ok "), out
    assert all(l.startswith(("ok ", "--")) for l in lines), out
    # one API call for the key (the wallet), one for the SSH keys
    assert [r["path"] for r in capi.requests()] == ["/api/v1/billing/wallet",
                                                     "/api/v1/ssh_keys/"]


def test_check_ssh_key_not_registered(capi, tmp_path):
    rc, lines, out = check(capi, tmp_path, register=False)
    assert rc == 1
    assert line(lines, "SSH key registered").startswith("FAIL"), out
    assert "ssh_keys/" in line(lines, "SSH key registered"), out
    assert line(lines, "SSH key ").startswith("ok "), out


def test_check_team_is_sent_and_named(capi, tmp_path):
    rc, lines, out = check(capi, tmp_path, env={"PRIME_TEAM_ID": "team-7"})
    assert rc == 0, out
    assert "team-7" in line(lines, "team")
    wallet = [r for r in capi.requests() if r["path"] == "/api/v1/billing/wallet"]
    assert wallet[-1]["query"].get("teamId") == ["team-7"]


def test_check_no_key(capi, tmp_path):
    rc, lines, out = check(capi, tmp_path, key=None)
    assert rc == 1
    assert line(lines, "API key").startswith("FAIL") and "prime login" in line(lines, "API key"), out


def test_check_refused_key_and_team(capi, tmp_path):
    rc, lines, out = check(capi, tmp_path, key="wrong-key", env={"PRIME_TEAM_ID": "team-7"})
    assert rc == 1
    assert line(lines, "API key").startswith("FAIL") and "refused" in line(lines, "API key"), out
    assert line(lines, "team").startswith("FAIL") and "team-7" in line(lines, "team"), out
    # the rest is still checked
    assert line(lines, "FUSE").startswith("ok "), out


def test_check_api_unreachable(tmp_path):
    rc, lines, out = check(None, tmp_path)
    assert rc == 1
    assert line(lines, "API").startswith("FAIL") and "no answer" in out, out


def test_check_ssh_key_missing_and_rsa(capi, tmp_path):
    rc, lines, out = check(capi, tmp_path, f"ssh_key={tmp_path / 'nokey'}", ssh=None)
    assert rc == 1
    assert line(lines, "SSH key").startswith("FAIL") and "ed25519" in line(lines, "SSH key"), out
    rc, lines, out = check(capi, tmp_path, ssh="rsa")
    import re
    libssh2 = re.search(r"libssh2 (\S+)", subprocess.run(
        [str(PRIMEFS), "--version"], capture_output=True, text=True).stdout).group(1)
    if tuple(int(x) for x in libssh2.split(".")[:2]) < (1, 11):
        assert rc == 1
        assert line(lines, "SSH key").startswith("FAIL") and "RSA" in line(lines, "SSH key"), out
        assert "ed25519" in line(lines, "SSH key")
    else:
        assert rc == 0, out


def test_check_state_directory_unsafe(capi, tmp_path):
    state = tmp_path / "shared-state"
    state.mkdir()
    os.chmod(state, 0o777)
    rc, lines, out = check(capi, tmp_path, f"state={state}")
    assert rc == 1
    assert line(lines, "state directory").startswith("FAIL"), out
    assert "chmod go-w" in line(lines, "state directory")
    os.chmod(state, 0o700)
    os.chown(state, 65534, 65534)  # nobody's
    rc, lines, out = check(capi, tmp_path, f"state={state}")
    assert rc == 1
    assert line(lines, "state directory").startswith("FAIL") and "not you" in out, out


def test_check_fuse_unusable(tmp_path):
    # /dev/fuse is 0600 root here: nobody cannot open it.
    if os.stat("/dev/fuse").st_mode & 0o006:
        pytest.skip("/dev/fuse is open to every user on this machine")
    r = subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c",
                        f"cd / && HOME=/nonexistent exec {PRIMEFS.resolve()} --check"],
                       capture_output=True, text=True, timeout=60)
    lines = r.stdout.splitlines()
    assert r.returncode == 1
    assert line(lines, "FUSE").startswith("FAIL") and "/dev/fuse" in line(lines, "FUSE"), \
        r.stdout + r.stderr
