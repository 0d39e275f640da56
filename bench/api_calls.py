#!/usr/bin/python3
"""API calls of a full crawl, next to the minimum.

After `echo refresh > ctl`, `ls -lR` of the mount and a read of every file
(as `cat` would). The fake API counts the calls per endpoint; the minimum
is the number of pages each listing needs (ceil(items/100), at least one),
one wallet call, and the pod logs the crawl reads: pods/*/log costs one
call each by design (DESIGN.md), rate-limited to a burst of 10 then 3 a
minute (src/state/podlog.h), so min(live pods, 10) of them, and up to one
more per 20 s the crawl takes. Goal: equal (the logs: within that). A second crawl right after is also
counted (minimum: none, everything is fresh). Default TTLs (pods 5 s,
offers 60 s).

    bench/api_calls.py [--offers N] [--pods N]
"""

import argparse
import os
import subprocess
import sys

import common

# src/state/podlog.h: PODLOG_BURST, PODLOG_PER_MINUTE.
LOG_BURST, LOG_PER_MINUTE = 10, 3
LOG_ENDPOINT = "GET /pods/{id}/log"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offers", type=int, default=300)
    ap.add_argument("--pods", type=int, default=250)
    args = ap.parse_args()
    with common.session(["--offers", str(args.offers), "--pods", str(args.pods)]) as s:
        api = s.api
        minimum = common.minimum_calls(api)
        m = s.mount()
        api.reset()
        m.write("ctl", "refresh\n")

        def full_crawl():
            ls = subprocess.run(["ls", "-lR", m.path], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
            c = common.crawl(m.path)
            c["ls errors"] = len(ls.stderr.splitlines())
            return c

        t1, c1 = common.timed(full_crawl)
        cold = api.counts()
        api.reset()
        t2, c2 = common.timed(full_crawl)
        warm = api.counts()

        print("== api_calls: API calls of `ls -lR` + reading every file, after `echo refresh > ctl`")
        print(f"fake API: --offers {args.offers} --pods {args.pods}: "
              f"{minimum['GET /availability/gpus (items)']} + "
              f"{minimum['GET /availability/multi-node (items)']} offers, "
              f"{minimum['GET /pods (items)']} pods, "
              f"{minimum['GET /pods/history (items)']} history entries")
        print(f"crawl: {c1['dirs']} dirs, {c1['files']} files read ({c1['bytes']} bytes), "
              f"{c1['links']} links, {c1['errors'] + c1['ls errors']} errors; "
              f"{common.fmt_s(t1)} (default TTLs: pods 5 s, offers 60 s)")
        print()
        # The logs the crawl read: one per live pod, within the bucket.
        live = len(os.listdir(m.p("pods")))
        minimum[LOG_ENDPOINT] = min(live, LOG_BURST)
        refill = int(LOG_PER_MINUTE * t1 / 60)
        log_max = min(live, LOG_BURST + refill)
        print("first crawl (after refresh):")
        n1, min1 = common.calls_table(cold, minimum)
        logs = cold.get(LOG_ENDPOINT, 0)
        print(f"({LOG_ENDPOINT}: {live} live pods' logs read; by design one call each "
              f"within the bucket: a burst of {LOG_BURST}, then {LOG_PER_MINUTE} a minute, "
              f"so {minimum[LOG_ENDPOINT]} to {log_max} in {common.fmt_s(t1)})")
        print()
        print(f"second crawl, right after ({common.fmt_s(t2)}): "
              f"{sum(warm.values())} calls (minimum 0; pod logs, by the bucket's refill: "
              f"{warm.get(LOG_ENDPOINT, 0)})")
        own = m.stats()
        print(f"primefs's own stats file: api_calls {own.get('api_calls')}, "
              f"cache_hits {own.get('cache_hits')}, cache_misses {own.get('cache_misses')}, "
              f"retries {own.get('retries')}")
        met = (n1 - logs == min1 - minimum[LOG_ENDPOINT]
               and minimum[LOG_ENDPOINT] <= logs <= log_max)
        print(f"goal: calls = minimum (pod logs within the bucket) -> "
              f"{'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
