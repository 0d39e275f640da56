#!/usr/bin/python3
"""A pod's files through the mount (pods/<pod>/fs, issue 17) beside sshfs
over the same local sshd, at 0 ms and at --rtt ms round trip
(bench/delay_proxy.py in front of sshd). Goal: each time at most sshfs's.

    bench/podfs.py [--mib 256] [--files 2000] [--rtt 50] [--rtt-files N]

Times: read a --mib file (cat), write one (cp, close included), cp -a of a
tree of --files files of 4 KiB up and back down, and a cold ls -lR of that
tree (on a fresh mount); each timed from a mount whose SSH session is up
(sshfs logs in at mount, primefs at the first access to a pod's files: a
stat of the mount's directory before the clock starts); prints a table with the ratio primefs/sshfs and
each daemon's peak memory (VmHWM); asserts nothing. sshfs keeps names and
attributes 20 s; primefs fs_ttl (1 s; --fs-ttl), which at 50 ms expires
during a cp -a of a few hundred files. Files are served from
the page cache on both sides: this measures the protocol and the client.
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
sys.path.insert(0, str(HERE))

import common  # noqa: E402
from conftest import FakeAPI, Mount  # noqa: E402
from delay_proxy import DelayProxy  # noqa: E402
from sshd import Sshd, make_key  # noqa: E402


def timed(cmd):
    t0 = time.monotonic()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def vmhwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024


class Primefs:
    name = "primefs"

    def __init__(self, certs, port, key, t, fs_ttl):
        self.api = FakeAPI(certs, ["--ssh", f"root@127.0.0.1:{port}"])
        self.certs, self.key, self.t, self.fs_ttl = certs, key, t, fs_ttl

    def mount(self, remote):
        kh = self.t / "kh"
        if kh.exists():
            kh.unlink()
        self.m = Mount(self.api, [f"ssh_key={self.key}", f"known_hosts={kh}",
                                  f"fs_ttl={self.fs_ttl}"], certs=self.certs)
        self.pid = self.m.proc.pid
        return self.m.p("pods", "demo", "fs", str(remote).lstrip("/"))

    def unmount(self):
        self.m.stop()

    def stop(self):
        self.api.stop()


class Sshfs:
    name = "sshfs"

    def __init__(self, certs, port, key, t, fs_ttl):
        self.port, self.key, self.t = port, key, t

    def mount(self, remote):
        self.mnt = self.t / "sshfs-mnt"
        self.mnt.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["sshfs", "-f", "-p", str(self.port), "-o", f"IdentityFile={self.key}",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR", f"root@127.0.0.1:{remote}", str(self.mnt)])
        deadline = time.time() + 20
        while not os.path.ismount(self.mnt):
            assert time.time() < deadline and self.proc.poll() is None, "sshfs did not mount"
            time.sleep(0.05)
        self.pid = self.proc.pid
        return str(self.mnt)

    def unmount(self):
        subprocess.run(["fusermount3", "-u", str(self.mnt)])
        self.proc.wait(30)

    def stop(self):
        pass


def run(tool, remote, src, tree, t):
    res = {}
    for p in remote.glob("*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    shutil.copy(src, remote / "big_r")
    m = tool.mount(remote)
    # sshfs logs in at mount, primefs at the first access to a pod's files:
    # both timed from a session that is up (see the ls -lR below).
    timed(f"stat {m} >/dev/null")
    res["read"] = timed(f"cat {m}/big_r > /dev/null")
    res["write"] = timed(f"cp {src} {m}/big_w")
    res["cp -a up"] = timed(f"cp -a {tree} {m}/up")
    down = t / "down"
    shutil.rmtree(down, ignore_errors=True)
    res["cp -a down"] = timed(f"cp -a {m}/up {down}")
    peak = vmhwm(tool.pid)
    tool.unmount()
    m = tool.mount(remote)
    # The connection made (sshfs makes it at mount) and the path to the
    # mount's directory known, as sshfs's root: the listing is cold.
    timed(f"stat {m} >/dev/null")
    res["ls -lR cold"] = timed(f"ls -lR {m}/up")
    peak = max(peak, vmhwm(tool.pid))
    tool.unmount()
    return res, peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--rtt", type=float, default=50)
    ap.add_argument("--fs-ttl", type=float, default=1, help="primefs's -o fs_ttl=")
    ap.add_argument("--rtt-files", type=int, default=0,
                    help="files at --rtt (default --files; a file costs several round trips)")
    a = ap.parse_args()
    common.check_setup()
    if not shutil.which("sshfs"):
        sys.exit("sshfs missing (apt-get install sshfs)")
    certs = common.certs()
    with tempfile.TemporaryDirectory(prefix="bench-podfs-") as t:
        t = Path(t)
        key, pub = make_key(t, "ed25519")
        pod = Sshd(t / "sshd", authorized_keys=[pub])
        remote = t / "remote"
        remote.mkdir()
        src = t / "src"
        with open(src, "wb") as f:
            f.write(os.urandom(1 << 20) * a.mib)
        trees = {}
        for n in (a.files, a.rtt_files or a.files):
            tree = trees[n] = t / f"tree{n}"
            for i in range(n):
                d = tree / f"d{i // 100:03d}"
                d.mkdir(parents=True, exist_ok=True)
                (d / f"f{i:05d}").write_bytes(os.urandom(4096))
        print(f"read/write {a.mib} MiB, cp -a and ls -lR of {a.files} files of 4 KiB "
              f"({a.rtt_files or a.files} at {a.rtt:.0f} ms); primefs fs_ttl={a.fs_ttl:g} "
              f"(sshfs caches 20 s); load {os.getloadavg()[0]:.1f}")
        print(f"{'rtt':>4} {'what':12} {'primefs s':>10} {'sshfs s':>10} {'ratio':>6}")
        try:
            for rtt in (0, a.rtt):
                tree = trees[a.rtt_files or a.files] if rtt else trees[a.files]
                proxy = DelayProxy(pod.port, one_way=rtt / 2000) if rtt else None
                port = proxy.port if proxy else pod.port
                out = {}
                for cls in (Primefs, Sshfs):
                    tool = cls(certs, port, key, t, a.fs_ttl)
                    try:
                        out[cls.name] = run(tool, remote, src, tree, t)
                    finally:
                        tool.stop()
                for what in out["primefs"][0]:
                    p, s = out["primefs"][0][what], out["sshfs"][0][what]
                    print(f"{rtt:4.0f} {what:12} {p:10.2f} {s:10.2f} {p / s:6.2f}", flush=True)
                print(f"{rtt:4.0f} {'peak MiB':12} {out['primefs'][1]:10.1f} "
                      f"{out['sshfs'][1]:10.1f}", flush=True)
                if proxy:
                    proxy.stop()
        finally:
            pod.stop()


if __name__ == "__main__":
    main()
