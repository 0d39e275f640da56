#!/usr/bin/python3
"""A pod's files over SFTP: primefs's SFTP client (src/ssh/sftp*.c, through
tests/unit/test_sftp's "big" scenario: a file written then read whole
through the API, 128 KiB calls, no FUSE) against OpenSSH's `sftp` and
`scp` and against sshfs (if installed: apt-get install sshfs), all on the
same local sshd, at 0 ms and at --rtt ms round trip (bench/delay_proxy.py
in front of sshd). Goal (issue 17): at least sshfs's speed at both.

    bench/sftp.py [--mib 256] [--rtt 50] [--rounds 1]

Prints MB/s for write (upload) and read (download) of each, and the time
to list a directory of --entries files with their attributes (sftp: its
`ls -l` less an empty session; sshfs: `ls -l` on a fresh mount); asserts
nothing. The file is served from the page cache on both sides: this
measures the protocol and the client, not a disk.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

from delay_proxy import DelayProxy  # noqa: E402
from sshd import Sshd, make_key  # noqa: E402

BUILD = Path(os.environ.get("PRIMEFS_BUILD", ROOT / "build")).resolve()


def timed(cmd, **kw):
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.monotonic() - t0


def ssh_opts(key):
    return ["-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]


def ours(work, port, key, size):
    exe = BUILD / "tests" / "unit" / "test_sftp"
    kh = work / "known_hosts"
    if kh.exists():
        kh.unlink()
    out = subprocess.run(
        [str(exe), "big", "host=127.0.0.1", f"port={port}", "user=root", f"key={key}",
         f"known_hosts={kh}", f"dir={work}", f"bytes={size}"],
        capture_output=True, text=True, check=True).stdout
    vals = dict(l[2:].split() for l in out.splitlines()
                if l.startswith("# ") and len(l.split()) == 3)
    assert "not ok" not in out, out
    return float(vals["write_s"]), float(vals["read_s"])


def openssh_sftp(work, port, key, src):
    batch = work / "batch"
    # Two runs to split write from read.
    batch.write_text(f"put {src} {work}/up.sftp\n")
    w = timed(["sftp", *ssh_opts(key), "-P", str(port), "-b", str(batch), "root@127.0.0.1"])
    batch.write_text(f"get {work}/up.sftp {work}/down.sftp\n")
    r = timed(["sftp", *ssh_opts(key), "-P", str(port), "-b", str(batch), "root@127.0.0.1"])
    return w, r


def scp(work, port, key, src):
    w = timed(["scp", *ssh_opts(key), "-P", str(port), str(src), f"root@127.0.0.1:{work}/up.scp"])
    r = timed(["scp", *ssh_opts(key), "-P", str(port), f"root@127.0.0.1:{work}/up.scp",
               str(work / "down.scp")])
    return w, r


def sshfs(work, port, key, src):
    mnt = work.parent / "mnt"
    mnt.mkdir(exist_ok=True)
    opts = ssh_opts(key)
    opts[0:2] = ["-o", f"IdentityFile={key}"]
    subprocess.run(["sshfs", "-p", str(port), *opts, f"root@127.0.0.1:{work}", str(mnt)],
                   check=True)
    try:
        w = timed(["dd", f"if={src}", f"of={mnt}/up.sshfs", "bs=128k", "conv=fsync",
                   "status=none"])
        # Another name than the one just written: no page cache of ours.
        shutil.copy(src, work / "other.sshfs")
        r = timed(["dd", f"if={mnt}/other.sshfs", "of=/dev/null", "bs=128k", "status=none"])
        return w, r
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)])


def list_ours(work, port, key, ldir):
    exe = BUILD / "tests" / "unit" / "test_sftp"
    kh = work.parent / "known_hosts"
    if kh.exists():
        kh.unlink()
    out = subprocess.run(
        [str(exe), "list", "host=127.0.0.1", f"port={port}", "user=root", f"key={key}",
         f"known_hosts={kh}", f"dir={work}", f"list_dir={ldir}"],
        capture_output=True, text=True, check=True).stdout
    assert "not ok" not in out, out
    return float([l.split()[2] for l in out.splitlines() if l.startswith("# list_s")][0])


def list_sftp(work, port, key, ldir):
    batch = work.parent / "batch"
    batch.write_text("pwd\n")
    base = timed(["sftp", *ssh_opts(key), "-P", str(port), "-b", str(batch), "root@127.0.0.1"])
    batch.write_text(f"ls -l {ldir}\n")
    t = timed(["sftp", *ssh_opts(key), "-P", str(port), "-b", str(batch), "root@127.0.0.1"])
    return max(t - base, 0.001)


def list_sshfs(work, port, key, ldir):
    mnt = work.parent / "mnt"
    mnt.mkdir(exist_ok=True)
    opts = ssh_opts(key)
    opts[0:2] = ["-o", f"IdentityFile={key}"]
    subprocess.run(["sshfs", "-p", str(port), *opts, f"root@127.0.0.1:{ldir}", str(mnt)],
                   check=True)
    try:
        return timed(["ls", "-l", str(mnt)])
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rtt", type=float, default=50)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--entries", type=int, default=10000)
    a = ap.parse_args()
    size = a.mib << 20
    with tempfile.TemporaryDirectory(prefix="bench-sftp-") as t:
        t = Path(t)
        key, pub = make_key(t, "ed25519")
        pod = Sshd(t / "sshd", authorized_keys=[pub])
        work = t / "work"
        work.mkdir()
        src = t / "src"
        with open(src, "wb") as f:
            f.write(os.urandom(1 << 20) * a.mib)
        ldir = t / "list"
        ldir.mkdir()
        for i in range(a.entries):
            (ldir / f"file-{i:06d}").write_bytes(b"x" * (i % 100))
        tools = [("primefs sftp API", ours), ("OpenSSH sftp", openssh_sftp),
                 ("OpenSSH scp", scp)]
        if shutil.which("sshfs"):
            tools.append(("sshfs 3.7", sshfs))
        print(f"{a.mib} MiB, MB/s (best of {a.rounds}); load {os.getloadavg()[0]:.1f}")
        try:
            for rtt in (0, a.rtt):
                proxy = DelayProxy(pod.port, one_way=rtt / 2000) if rtt else None
                port = proxy.port if proxy else pod.port
                for name, fn in tools:
                    best = [1e9, 1e9]
                    for _ in range(a.rounds):
                        if name == "primefs sftp API":
                            w, r = fn(work, port, key, size)
                        else:
                            w, r = fn(work, port, key, src)
                        best = [min(best[0], w), min(best[1], r)]
                        for p in work.glob("*"):
                            if p.is_file():
                                p.unlink()
                    print(f"  rtt {rtt:3.0f} ms  {name:18s} write {size / 1e6 / best[0]:7.1f}"
                          f"  read {size / 1e6 / best[1]:7.1f}", flush=True)
                lists = [("primefs sftp API", list_ours), ("OpenSSH sftp ls -l", list_sftp)]
                if shutil.which("sshfs"):
                    lists.append(("sshfs ls -l", list_sshfs))
                for name, fn in lists:
                    s = min(fn(work, port, key, ldir) for _ in range(a.rounds))
                    print(f"  rtt {rtt:3.0f} ms  {name:18s} list {a.entries} entries "
                          f"(with attributes) {s:6.3f} s", flush=True)
                if proxy:
                    proxy.stop()
        finally:
            pod.stop()


if __name__ == "__main__":
    main()
