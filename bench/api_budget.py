#!/usr/bin/python3
"""API calls an hour of a realistic script, beside the 900 goal.

The script: `cat pods/*/status` every second, a job running on a pod
(a real sshd plays it), guards armed on it (deadline, max_cost), and a
pod starting (PENDING throughout) that a second job waits for. Default
TTLs (pods 5 s). Measured twice in one run: with no budget to speak of
(-o api_budget=10000000: what the script asks for; the baseline) and with
the default budget of 900 an hour.

The budget's hour is compressed (-o api_budget_window=W with the budget
scaled to W/3600 of 900): its pace in seconds at a given fill of the
budget is then the same as with the real hour (budget.h: k * W/4 / (B - n)
scales with W/B), so the rate of calls after one window is the rate the
real hour settles at, reached in W seconds instead of an hour. Calls are
counted by the fake API over the second window (the first fills the
budget) and extrapolated to an hour: calls/s * 3600. Goal: <= 900.

    bench/api_budget.py [--window 60]
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import time

import common
from sshd import Sshd, make_key

GOAL = 900
CONFIG = "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"


def counted(counts):
    return sum(n for k, n in counts.items() if not k.startswith(("POST ", "DELETE ")))


def scenario(s, key, tmp, budget, window):
    """Calls per hour (extrapolated) of the script, and the counts by
    endpoint over the measured window."""
    m = s.mount((f"ssh_key={key}", f"known_hosts={tmp}/known_hosts", "ready_timeout=3600",
                 f"api_budget={budget}", f"api_budget_window={window}",
                 f"state={s.tmpdir()}"))
    m.write("config", CONFIG)
    os.mkdir(m.p("pods", "starting"))
    procs = []
    # A job on demo, running throughout; a job waiting for the starting pod.
    procs.append(subprocess.Popen(["sh", "-c", f"echo 'sleep 100000' > {m.p('pods/demo/run')}"]))
    procs.append(subprocess.Popen(["sh", "-c", f"echo true > {m.p('pods/starting/run')}"]))
    for f, v in (("deadline", "10h"), ("max_cost", "100")):
        with open(m.p("pods", "demo", f), "w") as fh:
            fh.write(v + "\n")
    # The poller: status every second.
    poller = subprocess.Popen(["sh", "-c", f"cd {m.path} && while :; do "
                               "cat pods/*/status >/dev/null 2>&1; sleep 1; done"])
    procs.append(poller)
    try:
        time.sleep(window)          # the first window fills the budget
        s.api.reset()
        t0 = time.monotonic()
        time.sleep(window)
        counts = s.api.counts()
        elapsed = time.monotonic() - t0
        stats = m.stats()
    finally:
        for p in procs:
            p.kill()
            p.wait()
    per_hour = counted(counts) / elapsed * 3600
    return per_hour, {k: n for k, n in counts.items() if n}, stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=60,
                    help="the compressed hour, seconds (default 60: a 60x compression)")
    a = ap.parse_args()
    common.check_setup()
    tmp = tempfile.mkdtemp(prefix="primefs-bench-budget.")
    os.mkdir(os.path.join(tmp, "keys"))
    key, pub = make_key(os.path.join(tmp, "keys"), "ed25519")
    sshd = Sshd(os.path.join(tmp, "sshd"), authorized_keys=[pub])
    scaled = max(1, round(GOAL * a.window / 3600))
    rows, details = [], []
    try:
        for label, budget in (("no budget (baseline)", 10000000),
                              (f"api_budget=900 (as {scaled} per {a.window:.0f} s)", scaled)):
            with common.session(("--ssh", f"root@127.0.0.1:{sshd.port}",
                                 "--pending-secs", "100000")) as s:
                per_hour, counts, stats = scenario(s, key, tmp, budget, a.window)
            rows.append([label, f"{per_hour:.0f}", GOAL,
                         "met" if per_hour <= GOAL else "NOT met"])
            details.append((label, counts, stats))
    finally:
        sshd.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print("== api_budget: API calls an hour of `cat pods/*/status` every second, a running "
          "job, guards armed, a pod starting and a job waiting for it")
    print(f"(the budget's hour compressed to {a.window:.0f} s; calls counted over the second "
          f"window and extrapolated; POST and DELETE not counted)")
    print()
    common.table(["scenario", "calls/hour", "goal", ""], rows)
    print()
    for label, counts, stats in details:
        print(f"{label}: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))
        print(f"  primefs's stats: api_calls_hour {stats.get('api_calls_hour')} of "
              f"api_budget {stats.get('api_budget')} (in its compressed hour), "
              f"stale_served {stats.get('stale_served')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
