#!/usr/bin/python3
"""mkdir of a pod: time to PENDING and API calls per mkdir.

For each mkdir: the time mkdir takes, the time from mkdir's return until
`cat pods/<name>/status` says PENDING, and the API calls it made by
endpoint (goal: one POST, at most one listing). Three cases: a healthy API;
a listing that shows new pods 5 s late (/_admin/lag); a create answer that
is lost after the pod was made (/_admin/slow_create lose). The baseline,
measured in the same run: the fake API's own POST /pods/ and GET /pods/
round trips, from Python, with the body primefs sent.

    bench/mkdir.py [--n N]
"""

import argparse
import collections
import os
import sys
import time

import common

TEMPLATE = "max_pods = 10000\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"


def until_pending(m, name, limit=30.0):
    t = time.perf_counter()
    while True:
        try:
            if m.read("pods", name, "status") == "PENDING\n":
                return time.perf_counter() - t
        except OSError:
            pass
        if time.perf_counter() - t > limit:
            return float("nan")
        time.sleep(0.001)


def run_case(api, m, label, n, setup=None, prefix="b"):
    if setup:
        setup()
    mk, pend, calls, errors = [], [], collections.Counter(), collections.Counter()
    for i in range(n):
        name = f"{prefix}{i}"
        api.reset()
        t = time.perf_counter()
        try:
            os.mkdir(m.p("pods", name))
            errors["ok"] += 1
        except OSError as e:
            errors[os.strerror(e.errno)] += 1
        mk.append(time.perf_counter() - t)
        pend.append(until_pending(m, name))
        for e, c in api.counts().items():
            calls[e] += c
    api.admin("lag", {"secs": 0})
    api.admin("slow_create", {"secs": 0, "lose": False})
    return {"label": label, "mkdir": mk, "pending": pend, "calls": calls, "n": n,
            "results": errors}


def ms(values, p):
    return f"{common.pct(values, p) * 1000:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    args = ap.parse_args()
    # A pod stays PENDING for a minute: the status file has something to say.
    with common.session(["--pending-secs", "60"]) as s:
        api = s.api
        m = s.mount()
        m.write("config", TEMPLATE)
        os.listdir(m.p("availability", "H100_80GB"))  # offers cached (60 s)
        os.mkdir(m.p("pods", "warm"))
        cases = [
            run_case(api, m, "healthy API", args.n, prefix="h"),
            run_case(api, m, "listing 5 s late", args.n, prefix="l",
                     setup=lambda: api.admin("lag", {"secs": 5.0})),
            run_case(api, m, "answer lost", args.n, prefix="x",
                     setup=lambda: api.admin("slow_create", {"secs": 0, "lose": True})),
        ]
        body = [r for r in api.requests() if r["method"] == "POST"]
        body = body[-1]["body"] if body else None
        # Baseline: the fake's own round trips from Python.
        base_post, base_get = [], []
        for i in range(args.n):
            if body:
                body["pod"]["name"] = f"base{i}"
                t = time.perf_counter()
                api._call("POST", "/api/v1/pods/", body, auth=True)
                base_post.append(time.perf_counter() - t)
            t = time.perf_counter()
            api.get("/pods/?offset=0&limit=100")
            base_get.append(time.perf_counter() - t)

        print(f"== mkdir: mkdir pods/<name> -> PENDING, {args.n} mkdirs per case "
              "(offers cached)")
        rows = []
        for c in cases:
            rows.append([c["label"], ms(c["mkdir"], 50), ms(c["mkdir"], 90),
                         ms(c["pending"], 50), ms(c["pending"], 90),
                         " ".join(f"{k}:{v}" for k, v in sorted(c["results"].items()))])
        if base_post:
            rows.append(["baseline: POST /pods/ round trip", ms(base_post, 50),
                         ms(base_post, 90), "-", "-", ""])
        rows.append(["baseline: GET /pods/ round trip", ms(base_get, 50), ms(base_get, 90),
                     "-", "-", ""])
        common.table(["case", "mkdir p50 ms", "p90", "to PENDING p50 ms", "p90", "mkdir results"],
                     rows)
        print()
        print("API calls per mkdir, by endpoint (goal: POST 1, listings at most 1):")
        endpoints = sorted({e for c in cases for e, v in c["calls"].items() if v})
        common.table(["endpoint"] + [c["label"] for c in cases],
                     [[e] + [f"{c['calls'].get(e, 0) / c['n']:.2f}" for c in cases]
                      for e in endpoints])
    return 0


if __name__ == "__main__":
    sys.exit(main())
