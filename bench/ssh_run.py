#!/usr/bin/python3
"""Commands on a pod: primefs's run/exit against OpenSSH's own client, on
the same local sshd, in one run.

The pod's ~/.bashrc sleeps 0.15 s, as real pods' cost about that (bash
reads it for a command run over SSH): a job should pay it once, as `ssh
host cmd` does. Everything is measured twice: on a pod reached directly,
and on the same sshd behind bench/delay_proxy.py (--rtt-ms, default 50 ms
round trip), where the SSH channel's window, not the CPU, bounds the
throughput.

Job start latency: `echo true > run; cat exit` (primefs keeps one session
per pod) versus `ssh host true` started fresh each time, and versus ssh
with `-o ControlMaster=auto -o ControlPath=... -o ControlPersist=60` whose
master is already warm (the best a shell script can do). Goal: primefs at
or below the ControlMaster figure (<= 1.0x).

Throughput: 256 MiB of output, `cat run` versus `ssh host head -c
268435456 /dev/zero` into /dev/null, through the ControlMaster and on a
fresh connection (what a user pays). primefs writes the output to a local
file as it arrives and `cat run` reads it back through FUSE. Beside them,
what a script does with a job's own files: `echo ... > run; cat
jobs/N/exit; cat jobs/N/out` (start to the last byte, and the read of the
finished `out` alone). Best of
--rounds each, interleaved, against the noise of a shared machine. Goal:
>= 0.9x of ssh. (Data alone, libssh2 1.10 needs about twice OpenSSH's CPU
per byte: on a busy machine the ratio drops.)

Where the time goes, printed when a goal is missed: the load, the CPU
seconds of the daemon beside ssh's, the SSH layer alone (tests/unit/test_ssh
throughput: channel reads, file writes and a reader alongside, no FUSE)
beside a plain 256 MiB file write, the daemon's context switches, and
`perf record` of the daemon if perf is installed and allowed (see explain()
for what libssh2 1.10 allows).

    bench/ssh_run.py [--n 20] [--mib 256] [--rounds 3] [--rtt-ms 50] [--no-perf]
"""

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time

import common
from delay_proxy import DelayProxy
from sshd import Sshd, make_key


def ssh_cmd(key, port, extra=()):
    return ["ssh", "-i", key, "-p", str(port), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", *extra, "root@127.0.0.1"]


def cpu_s(pid):
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s():
    r = os.times()
    return r.children_user + r.children_system


def self_cpu_s():
    r = os.times()
    return r.user + r.system


def master_pid(key, port, ctl):
    r = subprocess.run(ssh_cmd(key, port, ("-o", f"ControlPath={ctl}", "-O", "check")),
                       capture_output=True, text=True)
    m = re.search(r"pid=(\d+)", r.stdout + r.stderr)
    return int(m.group(1)) if m else None


def times(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def ctxt(pid):
    """(voluntary, involuntary) context switches of every thread of pid."""
    v = n = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        v += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        n += int(line.split()[1])
        except OSError:
            pass
    return v, n


def explain(a, key, sshd, tmp, m, primefs_cat, cpu_p, cpu_ssh, size):
    """Where the time goes (figures only). What to read in them (libssh2
    1.10): it decrypts a packet 16 bytes at a time, one EVP_Cipher call and
    one memcpy per AES block (crypt.c, _libssh2_cipher_crypt), so libcrypto
    costs some 17 million calls per 256 MiB whatever the window or read size;
    it recv()s at most 16 KiB at a time (PACKETBUFSIZE) and sshd sends at
    most 32 KiB per packet (LIBSSH2_CHANNEL_PACKET_DEFAULT); aes128-ctr with
    hmac-sha2-256 is the best it negotiates (no chacha20-poly1305, no GCM
    before 1.11). On a machine with fewer cores than busy processes the time
    is then CPU time waiting for its turn: see the involuntary context
    switches and the load."""
    mib = size >> 20
    print("where the time goes:")
    print(f"  load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")
    d, c = min(cpu_p)
    print(f"  CPU per {mib} MiB: primefs daemon {d:.2f} s, the reader {c:.2f} s; "
          f"ssh (master + client) {min(cpu_ssh):.2f} s")
    # The SSH layer alone (channel reads, file writes, a reader following
    # the file as FUSE does), no FUSE: one cold run (connect included),
    # then the best of two on the warm session; its CPU over the three.
    exe = common.conftest.BUILD / "tests" / "unit" / "test_ssh"
    if exe.exists():
        k0 = children_cpu_s()
        r = subprocess.run([str(exe), "throughput", "host=127.0.0.1", f"port={sshd.port}",
                            "user=root", f"key={key}", f"known_hosts={tmp}/known_hosts_t",
                            f"dir={tmp}", f"bytes={size}", "runs=2", "after=0"],
                           capture_output=True, text=True, timeout=300)
        cpu = (children_cpu_s() - k0) / 3
        warm = [float(l.split()[2]) for l in r.stdout.splitlines() if l.startswith("# warm_s ")]
        cold = [float(l.split()[2]) for l in r.stdout.splitlines() if l.startswith("# cold_s ")]
        if warm and cold:
            print(f"  SSH layer alone (test_ssh throughput: libssh2 reads, file writes, a "
                  f"reader alongside; no FUSE): {min(warm):.2f} s warm (best of 2), "
                  f"{cold[0]:.2f} s with connect; CPU {cpu:.2f} s per {mib} MiB")
    t = time.perf_counter()
    path = os.path.join(tmp, "write-test")
    with open(path, "wb") as f:
        block = bytes(1 << 18)
        for _ in range(size // len(block)):
            f.write(block)
    wt = time.perf_counter() - t
    os.unlink(path)
    print(f"  a plain {mib} MiB file write in 256 KiB blocks: {wt:.2f} s")
    if a.no_perf or not shutil.which("perf"):
        return
    data = os.path.join(tmp, "perf.data")
    rec = subprocess.Popen(["perf", "record", "-q", "-o", data, "-p", str(m.proc.pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    v0, n0 = ctxt(m.proc.pid)
    primefs_cat()
    v1, n1 = ctxt(m.proc.pid)
    rec.send_signal(2)
    rec.wait()
    print(f"  daemon context switches during `cat run` (under perf): {v1 - v0} voluntary "
          f"(waits), {n1 - n0} involuntary (preempted)")
    rep = subprocess.run(["perf", "report", "-q", "-i", data, "--stdio", "--sort", "dso",
                          "--percent-limit", "2"], capture_output=True, text=True)
    dsos = [" ".join(l.split()) for l in rep.stdout.splitlines() if l.strip()][:6]
    if dsos:
        print("  perf record of the daemon during `cat run`, by object: " + ", ".join(dsos))
    rep = subprocess.run(["perf", "report", "-q", "-i", data, "--stdio", "--sort", "dso,sym",
                          "--percent-limit", "2"], capture_output=True, text=True)
    lines = [l for l in rep.stdout.splitlines() if l.strip()][:15]
    if lines:
        print("  by symbol (>= 2%; libcrypto's unnamed ones are AES-NI's one-block path):")
        for l in lines:
            print("   " + l.rstrip())


RC = "sleep 0.15\n"  # a pod's ~/.bashrc costs about this (TESTING.md)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rtt-ms", type=float, default=50,
                    help="the far pod's round-trip time, through bench/delay_proxy.py "
                         "(0: the near pod only)")
    ap.add_argument("--no-perf", action="store_true", help="no perf record when a goal is missed")
    ap.add_argument("--explain", action="store_true", help="print where the time goes anyway")
    a = ap.parse_args()
    common.check_setup()
    tmp = tempfile.mkdtemp(prefix="primefs-bench-ssh.")
    os.mkdir(os.path.join(tmp, "keys"))
    key, pub = make_key(os.path.join(tmp, "keys"), "ed25519")
    sshd = Sshd(os.path.join(tmp, "sshd"), authorized_keys=[pub], bashrc=RC)
    proxy = DelayProxy(sshd.port, a.rtt_ms / 2000) if a.rtt_ms > 0 else None
    try:
        with common.session(("--ssh", f"root@127.0.0.1:{sshd.port}")) as s:
            m = s.mount((f"ssh_key={key}", f"known_hosts={tmp}/known_hosts"))
            pods = [("demo", 0, sshd.port)]
            if proxy:
                # The same sshd behind the delay, as a second pod.
                s.api.admin("pods", {"add": [{"name": "far",
                                              "sshConnection": f"root@127.0.0.1 -p {proxy.port}"}]})
                m.write("ctl", "refresh\n")
                pods.append(("far", a.rtt_ms, proxy.port))
            print(f"the pod's ~/.bashrc: {RC.strip()!r} (for primefs and ssh alike); "
                  f"libssh2 {libssh2_version()}")
            print()
            for pod, rtt, port in pods:
                measure(a, key, sshd, tmp, m, pod, rtt, port,
                        os.path.join(tmp, "ctl-%r@%h:%p"))
    finally:
        if proxy:
            proxy.stop()
        sshd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def libssh2_version():
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libssh2-1"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "?"


def measure(a, key, sshd, tmp, m, pod, rtt, port, ctl):
    master = None
    n = a.n if rtt < 20 else max(5, a.n // 2)
    print(f"== pod {pod}: {rtt:g} ms round trip"
          + (" (bench/delay_proxy.py in front of sshd, for primefs and ssh alike)" if rtt else ""))
    try:
        run = m.p("pods", pod, "run")
        exitf = m.p("pods", pod, "exit")

        def primefs_true():
            with open(run, "w") as f:
                f.write("true\n")
            with open(exitf) as f:
                f.read()

        primefs_true()  # the session is set up once, as a ControlMaster's
        lat_p = times(primefs_true, n)
        lat_fresh = times(lambda: subprocess.run(ssh_cmd(key, port) + ["true"], check=True), n)
        cm = ("-o", "ControlMaster=auto", "-o", f"ControlPath={ctl}",
              "-o", "ControlPersist=60")
        subprocess.run(ssh_cmd(key, port, cm) + ["true"], check=True)  # warms the master
        master = True
        lat_cm = times(lambda: subprocess.run(ssh_cmd(key, port, cm) + ["true"],
                                              check=True), n)

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

        def primefs_out():
            """Start to the last byte through jobs/N/out; and the read alone."""
            with open(run, "w") as f:
                f.write(cmd + "\n")
            jobs = m.p("pods", pod, "jobs")
            job = os.path.join(jobs, os.readlink(os.path.join(jobs, "latest")))
            with open(os.path.join(job, "exit")) as f:
                f.read()
            t = time.perf_counter()
            got = 0
            with open(os.path.join(job, "out"), "rb", buffering=0) as f:
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    got += len(chunk)
            return got, time.perf_counter() - t

        def ssh_cat(extra):
            with open(os.devnull, "wb") as null:
                subprocess.run(ssh_cmd(key, port, extra) + [cmd], stdout=null, check=True)

        pid = m.proc.pid
        tp_p, tp_ssh, tp_fresh, got = [], [], [], 0
        tp_out, tp_read, got_out = [], [], 0
        cpu_p, cpu_ssh = [], []
        mpid = master_pid(key, port, ctl)
        for _ in range(a.rounds):
            c0, k0 = cpu_s(pid), self_cpu_s()
            t = time.perf_counter()
            got = primefs_cat()
            tp_p.append(time.perf_counter() - t)
            cpu_p.append((cpu_s(pid) - c0, self_cpu_s() - k0))
            if not rtt:
                t = time.perf_counter()
                got_out, read_s = primefs_out()
                tp_out.append(time.perf_counter() - t)
                tp_read.append(read_s)
            k0, m0 = children_cpu_s(), cpu_s(mpid) if mpid else 0
            tp_ssh += times(lambda: ssh_cat(cm), 1)
            cpu_ssh.append(children_cpu_s() - k0 + (cpu_s(mpid) - m0 if mpid else 0))
            if not rtt:
                tp_fresh += times(lambda: ssh_cat(()), 1)
        tp_p, tp_ssh = min(tp_p), min(tp_ssh)

        med = lambda v: common.pct(v, 50) * 1000  # noqa: E731
        p90 = lambda v: common.pct(v, 90) * 1000  # noqa: E731
        print(f"job start latency, {n} runs each (ms)")
        common.table(["", "median", "p90"], [
            ["primefs: echo true > run; cat exit", f"{med(lat_p):.2f}", f"{p90(lat_p):.2f}"],
            ["  baseline: ssh host true (fresh)", f"{med(lat_fresh):.2f}", f"{p90(lat_fresh):.2f}"],
            ["  baseline: ssh -o ControlMaster=auto ... true (warm master)",
             f"{med(lat_cm):.2f}", f"{p90(lat_cm):.2f}"],
        ])
        lat_ratio = med(lat_p) / med(lat_cm)
        print(f"primefs / ControlMaster: {lat_ratio:.2f}x (goal <= 1.0: "
              f"{'met' if lat_ratio <= 1.0 else 'MISSED'}); "
              f"primefs / fresh ssh: {med(lat_p) / med(lat_fresh):.2f}x")
        print()
        print(f"output throughput, {a.mib} MiB, best of {a.rounds}")
        rows = [["primefs: cat run", f"{tp_p:.2f}", f"{got / (1 << 20) / tp_p:.0f}"]]
        if tp_out:
            tp_out, tp_read = min(tp_out), min(tp_read)
            rows += [["primefs: cat jobs/N/exit; cat jobs/N/out", f"{tp_out:.2f}",
                      f"{got_out / (1 << 20) / tp_out:.0f}"],
                     ["  of which cat jobs/N/out (the job ended)", f"{tp_read:.2f}",
                      f"{got_out / (1 << 20) / tp_read:.0f}"]]
        rows.append(["  baseline: ssh host head -c ... (ControlMaster)", f"{tp_ssh:.2f}",
                     f"{a.mib / tp_ssh:.0f}"])
        if tp_fresh:
            tp_fresh = min(tp_fresh)
            rows.append(["  baseline: ssh host head -c ... (fresh)", f"{tp_fresh:.2f}",
                         f"{a.mib / tp_fresh:.0f}"])
        common.table(["", "seconds", "MiB/s"], rows)
        tp_ratio = tp_ssh / tp_p
        print(f"primefs / ssh: {tp_ratio:.2f}x of ssh's throughput through the "
              f"ControlMaster (goal >= 0.9: {'met' if tp_ratio >= 0.9 else 'MISSED'})"
              + (f", {tp_fresh / tp_p:.2f}x of a fresh ssh" if tp_fresh else "")
              + f"; bytes read {got} of {size}")
        if tp_out:
            print(f"jobs/N/out: {tp_ssh / tp_out:.2f}x of ssh's throughput through the "
                  f"ControlMaster, start to the last byte; bytes read {got_out} of {size}")
        if not rtt and (lat_ratio > 1.0 or tp_ratio < 0.9 or a.explain):
            print()
            explain(a, key, sshd, tmp, m, primefs_cat, cpu_p, cpu_ssh, size)
        print()
    finally:
        if master:
            subprocess.run(ssh_cmd(key, port, ("-o", f"ControlPath={ctl}", "-O", "exit")),
                           capture_output=True)


if __name__ == "__main__":
    main()
