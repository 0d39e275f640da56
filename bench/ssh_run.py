#!/usr/bin/python3
"""Commands on a pod: primefs's run/exit against OpenSSH's own client, on
the same local sshd, in one run.

Latency: `echo true > run; cat exit` (primefs keeps one session per pod)
versus `ssh host true` started fresh each time, and versus ssh through a
ControlMaster that is already up (the best a shell script can do).
Goal: primefs at or below the ControlMaster figure.

Throughput: 256 MiB of output, `cat run` versus `ssh host head -c 256M
/dev/zero` into /dev/null, through the ControlMaster and on a fresh
connection (what a user pays). Best of --rounds each, interleaved, against
the noise of a shared machine. Goal: >= 0.9x of ssh. (Data alone, libssh2
1.10 needs about twice OpenSSH's CPU per byte: on a busy machine the ratio
drops.)

    bench/ssh_run.py [--n 30] [--mib 256] [--rounds 3]
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import time

import common
from sshd import Sshd, make_key


def ssh_cmd(key, port, extra=()):
    return ["ssh", "-i", key, "-p", str(port), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", *extra, "root@127.0.0.1"]


def times(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    common.check_setup()
    tmp = tempfile.mkdtemp(prefix="primefs-bench-ssh.")
    os.mkdir(os.path.join(tmp, "keys"))
    key, pub = make_key(os.path.join(tmp, "keys"), "ed25519")
    sshd = Sshd(os.path.join(tmp, "sshd"), authorized_keys=[pub])
    try:
        with common.session(("--ssh", f"root@127.0.0.1:{sshd.port}")) as s:
            m = s.mount((f"ssh_key={key}", f"known_hosts={tmp}/known_hosts"))
            measure(a, key, sshd, m, os.path.join(tmp, "ctl-%r@%h:%p"), s)
    finally:
        sshd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def measure(a, key, sshd, m, ctl, s):
    run = m.p("pods", "demo", "run")
    exitf = m.p("pods", "demo", "exit")

    def primefs_true():
        with open(run, "w") as f:
            f.write("true\n")
        with open(exitf) as f:
            f.read()

    primefs_true()  # the session is set up once, as a ControlMaster's
    lat_p = times(primefs_true, a.n)
    lat_fresh = times(lambda: subprocess.run(ssh_cmd(key, sshd.port) + ["true"], check=True),
                      a.n)
    master = subprocess.Popen(ssh_cmd(key, sshd.port, ("-M", "-N", "-S", ctl)))
    s.cleanup(master.terminate)
    deadline = time.time() + 10
    while subprocess.run(ssh_cmd(key, sshd.port, ("-S", ctl, "-O", "check")),
                         capture_output=True).returncode != 0:
        if time.time() > deadline:
            raise SystemExit("ControlMaster did not come up")
        time.sleep(0.05)
    lat_cm = times(lambda: subprocess.run(ssh_cmd(key, sshd.port, ("-S", ctl)) + ["true"],
                                          check=True), a.n)

    size = a.mib << 20
    cmd = f"head -c {size} /dev/zero"

    def primefs_cat():
        with open(run, "w") as f:
            f.write(cmd + "\n")
        got = 0
        with open(run, "rb", buffering=0) as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
        return got

    def ssh_cat(extra):
        with open(os.devnull, "wb") as null:
            subprocess.run(ssh_cmd(key, sshd.port, extra) + [cmd], stdout=null, check=True)

    tp_p, tp_ssh, tp_fresh, got = [], [], [], 0
    for _ in range(a.rounds):
        t = time.perf_counter()
        got = primefs_cat()
        tp_p.append(time.perf_counter() - t)
        tp_ssh += times(lambda: ssh_cat(("-S", ctl)), 1)
        tp_fresh += times(lambda: ssh_cat(()), 1)
    tp_p, tp_ssh, tp_fresh = min(tp_p), min(tp_ssh), min(tp_fresh)

    med = lambda v: common.pct(v, 50) * 1000  # noqa: E731
    p90 = lambda v: common.pct(v, 90) * 1000  # noqa: E731
    print(f"command latency, {a.n} runs each (ms)")
    common.table(["", "median", "p90"], [
        ["primefs: echo true > run; cat exit", f"{med(lat_p):.2f}", f"{p90(lat_p):.2f}"],
        ["  baseline: ssh host true (fresh)", f"{med(lat_fresh):.2f}", f"{p90(lat_fresh):.2f}"],
        ["  baseline: ssh host true (ControlMaster)", f"{med(lat_cm):.2f}", f"{p90(lat_cm):.2f}"],
    ])
    print(f"primefs / ControlMaster: {med(lat_p) / med(lat_cm):.2f}x (goal <= 1); "
          f"primefs / fresh ssh: {med(lat_p) / med(lat_fresh):.2f}x")
    print()
    print(f"output throughput, {a.mib} MiB, best of {a.rounds}")
    common.table(["", "seconds", "MiB/s"], [
        ["primefs: cat run", f"{tp_p:.2f}", f"{got / (1 << 20) / tp_p:.0f}"],
        ["  baseline: ssh host head -c ... (ControlMaster)", f"{tp_ssh:.2f}",
         f"{a.mib / tp_ssh:.0f}"],
        ["  baseline: ssh host head -c ... (fresh)", f"{tp_fresh:.2f}",
         f"{a.mib / tp_fresh:.0f}"],
    ])
    print(f"primefs / ssh: {tp_ssh / tp_p:.2f}x of ssh's throughput through the "
          f"ControlMaster, {tp_fresh / tp_p:.2f}x of a fresh ssh (goal >= 0.9); "
          f"bytes read {got} of {size}")


if __name__ == "__main__":
    main()
