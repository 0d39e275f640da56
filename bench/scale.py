#!/usr/bin/python3
"""primefs at scale: 10,000 offers and 1,000 pods.

Cold crawl (every directory listed, every entry lstat'ed, every file read,
right after `echo refresh > ctl`), warm crawl (the same again, all from the
cache), and the fetch alone (refresh, then the four listings and the
wallet); the daemon's peak RSS (VmHWM) beside a goal of 64 MiB; the fake
API's calls beside the minimum.

Baselines measured in the same run: the same crawl code over a copy of the
whole tree on tmpfs (/dev/shm); and the fake API serving the same pages to
a plain Python client, which is the share of the fetch primefs cannot
help (the fake is slow to build 10k-offer pages: measure primefs, not it).

The mount uses pods_ttl=600,offers_ttl=600 so that a crawl longer than the
default 5 s pods TTL is not refetched midway: the warm crawl is warm.

    bench/scale.py [--offers 10000] [--pods 1000]
"""

import argparse
import os
import sys

import common

GOAL_RSS_KIB = 64 * 1024


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offers", type=int, default=10000)
    ap.add_argument("--pods", type=int, default=1000)
    args = ap.parse_args()
    with common.session(["--offers", str(args.offers), "--pods", str(args.pods)]) as s:
        api, t_fake = s.api, s.t_fake
        minimum = common.minimum_calls(api)
        t_alone = common.fetch_pages(api, minimum)
        api.reset()
        m = s.mount(["pods_ttl=600", "offers_ttl=600"])
        pid = m.proc.pid
        rss_idle = common.vm(pid, "VmHWM")

        m.write("ctl", "refresh\n")
        api.reset()
        t_cold, c_cold = common.timed(common.crawl, m.path)
        calls_cold = api.counts()
        rss_cold = common.vm(pid, "VmRSS")

        api.reset()
        entries = []
        t_warm, c_warm = common.timed(common.crawl, m.path, lambda p, k, d: entries.append((p, k, d)))
        calls_warm = sum(api.counts().values())

        def fetch_only():
            m.write("ctl", "refresh\n")
            for d in ("availability", "pods", "history"):
                os.listdir(m.p(d))
            m.read("balance")
        api.reset()
        t_fetch, _ = common.timed(fetch_only)
        calls_fetch = sum(api.counts().values())
        rss_peak = common.vm(pid, "VmHWM")
        rss_now = common.vm(pid, "VmRSS")

        # The same tree on tmpfs, crawled by the same code.
        t_tmpfs = c_tmpfs = None
        need_kib = 2 * 4 * len(entries) + sum(len(d) for _, k, d in entries if k == "file") // 1024
        if mem_available_kib() > need_kib + 1024 * 1024:
            shm = s.tmpdir(dir="/dev/shm")
            for p, kind, data in entries:
                q = os.path.join(shm, os.path.relpath(p, m.path))
                if kind == "dir":
                    os.makedirs(q, exist_ok=True)
                elif kind == "link":
                    os.symlink(data, q)
                else:
                    os.makedirs(os.path.dirname(q), exist_ok=True)
                    with open(q, "wb") as f:
                        f.write(data)
            entries.clear()
            t_tmpfs, c_tmpfs = common.timed(common.crawl, shm)
        entries.clear()

        print(f"== scale: --offers {args.offers} --pods {args.pods} "
              f"({minimum['GET /availability/gpus (items)']} + "
              f"{minimum['GET /availability/multi-node (items)']} offers, "
              f"{minimum['GET /pods (items)']} pods)")
        print(f"tree: {c_cold['dirs']} dirs, {c_cold['files']} files "
              f"({c_cold['bytes'] / 1e6:.1f} MB), {c_cold['links']} links; "
              f"errors cold {c_cold['errors']}, warm {c_warm['errors']}")
        print(f"(the fake API took {common.fmt_s(t_fake)} to start)")
        print()
        n = c_cold["files"] + c_cold["dirs"] + c_cold["links"]
        rows = [
            ["cold crawl (after refresh)", common.fmt_s(t_cold), f"{t_cold / n * 1e6:.1f}",
             sum(calls_cold.values())],
            ["warm crawl", common.fmt_s(t_warm), f"{t_warm / n * 1e6:.1f}", calls_warm],
        ]
        if t_tmpfs is not None:
            rows.append(["  baseline: same crawl on tmpfs", common.fmt_s(t_tmpfs),
                         f"{t_tmpfs / n * 1e6:.1f}", "-"])
        rows.append(["fetch only (refresh + 4 listings + balance)", common.fmt_s(t_fetch), "-",
                     calls_fetch])
        rows.append(["  baseline: fake API alone, same pages", common.fmt_s(t_alone), "-",
                     sum(v for k, v in minimum.items() if not k.endswith("(items)"))])
        common.table(["", "time", "us/entry", "API calls"], rows)
        if t_tmpfs is not None:
            print(f"vs the tmpfs crawl: cold {t_cold / t_tmpfs:.1f}x, warm {t_warm / t_tmpfs:.1f}x; "
                  f"fetch vs the fake API alone: {t_fetch / t_alone:.1f}x")
        else:
            print("(tmpfs baseline skipped: not enough free memory for a copy of the tree)")
        print()
        print("API calls of the cold crawl:")
        common.calls_table(calls_cold, minimum)
        print()
        mib = lambda kib: f"{kib / 1024:.1f} MiB" if kib is not None else "?"
        common.table(["primefs daemon memory", "value", "goal"], [
            ["VmHWM after mount (idle)", mib(rss_idle), ""],
            ["VmRSS after the cold crawl", mib(rss_cold), ""],
            ["VmRSS at the end", mib(rss_now), ""],
            ["VmHWM (peak) over the run", mib(rss_peak), mib(GOAL_RSS_KIB)],
        ])
        print(f"goal: peak RSS <= 64 MiB -> "
              f"{'met' if rss_peak is not None and rss_peak <= GOAL_RSS_KIB else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
