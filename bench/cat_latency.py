#!/usr/bin/python3
"""Warm read latency of one value file (pods/demo/status) next to the same
read of a file with the same content on tmpfs (/dev/shm), in one run.

Two ways, interleaved (primefs, tmpfs, primefs, ...) so that both see the
same machine: open+read+close in this process (--reads, default 2000), and
/bin/cat run as a subprocess (--cats, default 300). Median and p99 of
each, and their ratio. Goal: primefs at most 3x tmpfs.

The mount uses pods_ttl=600, so every read is served from the cache (warm);
the API calls made during the runs are printed (expected: none).

    bench/cat_latency.py [--reads N] [--cats N] [--file pods/demo/status]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import common


def read_once(path):
    t = time.perf_counter_ns()
    fd = os.open(path, os.O_RDONLY)
    data = os.read(fd, 65536)
    os.close(fd)
    return time.perf_counter_ns() - t, data


def cat_once(path):
    t = time.perf_counter_ns()
    r = subprocess.run(["/bin/cat", path], stdout=subprocess.PIPE)
    return time.perf_counter_ns() - t, r.stdout


def measure(fn, a, b, n):
    """n interleaved runs of fn on a and on b: their times in ns."""
    ta, tb = [], []
    for i in range(n):
        for path, out in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
            out.append(fn(path)[0])
    return ta, tb


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--cats", type=int, default=300)
    ap.add_argument("--file", default="pods/demo/status")
    args = ap.parse_args()
    with common.session() as s:
        api = s.api
        shm = s.tmpdir(dir="/dev/shm")
        m = s.mount(["pods_ttl=600"])
        fuse_path = m.p(args.file)
        content = m.read(args.file)  # warms the cache
        tmpfs_path = os.path.join(shm, os.path.basename(args.file))
        with open(tmpfs_path, "w") as f:
            f.write(content)
        # Warm-up of both paths (kernel dentries, page cache, Python).
        for _ in range(50):
            read_once(fuse_path)
            read_once(tmpfs_path)
        api.reset()

        r_fuse, r_tmpfs = measure(read_once, fuse_path, tmpfs_path, args.reads)
        c_fuse, c_tmpfs = measure(cat_once, fuse_path, tmpfs_path, args.cats)
        calls = sum(api.counts().values())
        same = read_once(fuse_path)[1] == read_once(tmpfs_path)[1] == content.encode()

        print(f"== cat_latency: warm reads of {args.file} ({len(content)} bytes, "
              f"{content.strip()!r}) vs the same bytes on tmpfs")
        rows = []
        for label, f, t in (
                (f"open+read+close x{args.reads}", r_fuse, r_tmpfs),
                (f"/bin/cat x{args.cats}", c_fuse, c_tmpfs)):
            mf, mt = statistics.median(f), statistics.median(t)
            pf, pt = common.pct(f, 99), common.pct(t, 99)
            rows.append([label, common.fmt_us(mf), common.fmt_us(mt), f"{mf / mt:.2f}x",
                         common.fmt_us(pf), common.fmt_us(pt), f"{pf / pt:.2f}x"])
        common.table(["in microseconds", "primefs med", "tmpfs med", "ratio",
                      "primefs p99", "tmpfs p99", "ratio"], rows)
        print(f"API calls during the runs: {calls} (warm: expected 0); "
              f"same content read: {same}")
        worst = max(statistics.median(r_fuse) / statistics.median(r_tmpfs),
                    statistics.median(c_fuse) / statistics.median(c_tmpfs))
        print(f"goal: median ratio <= 3x -> {'met' if worst <= 3 else 'NOT met'} "
              f"(worst median ratio {worst:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
