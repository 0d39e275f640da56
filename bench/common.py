"""Shared helpers of the benchmarks: the fake API and the mount come from
tests/conftest.py (FakeAPI, Mount); this adds their setup and teardown in
one context manager (session), the test CA, the crawl, the minimum number
of API calls a listing needs, percentiles and tables.

Benchmarks print figures beside a baseline measured in the same run; they
assert nothing. Run as root (FUSE mounts need it here), with the binary at
build/primefs or $PRIMEFS_BUILD/primefs.
"""

import contextlib
import math
import os
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import conftest  # noqa: E402  (also turns SIGTERM into sys.exit)
from conftest import FakeAPI, Mount  # noqa: E402,F401
from make_certs import make_certs  # noqa: E402

PAGE = 100  # API_PAGE_SIZE in src/api/api.h

# The listings primefs reads, as the fake API counts them.
LISTINGS = [
    ("GET /availability/gpus", "/availability/gpus?page=1&page_size=1", "totalCount"),
    ("GET /availability/multi-node", "/availability/multi-node?page=1&page_size=1", "totalCount"),
    ("GET /pods", "/pods?offset=0&limit=1", "total_count"),
    ("GET /pods/history", "/pods/history?offset=0&limit=1", "total_count"),
]


def check_setup():
    if os.geteuid() != 0:
        sys.exit("run the benchmarks as root: FUSE mounts need it here")
    if not conftest.PRIMEFS.exists():
        sys.exit(f"{conftest.PRIMEFS} missing: meson setup build && ninja -C build")


def certs():
    return make_certs(tempfile.mkdtemp(prefix="primefs-bench-certs."))


class Session:
    """What a benchmark sets up: the test CA, the fake API (self.api), the
    mounts it asks for and any other teardown it registers. Made by
    session(); everything is undone, last first, when the `with` ends."""

    def __init__(self, stack, api_args=(), tls=True):
        self._stack = stack
        self.certs = certs()
        self.t_fake, self.api = timed(FakeAPI, self.certs, list(api_args), tls)
        stack.callback(self.api.stop)

    def mount(self, options=(), **kw):
        """primefs mounted over the fake API; unmounted at the end."""
        m = Mount(self.api, options, certs=self.certs, **kw)
        self._stack.callback(m.stop)
        return m

    def tmpdir(self, prefix="primefs-bench.", dir=None):
        """A fresh directory (dir="/dev/shm" for tmpfs), removed at the end."""
        d = tempfile.mkdtemp(prefix=prefix, dir=dir)
        self._stack.callback(shutil.rmtree, d, ignore_errors=True)
        return d

    def cleanup(self, fn, *args, **kw):
        """fn(*args, **kw) at the end, before what was set up earlier."""
        self._stack.callback(fn, *args, **kw)


@contextlib.contextmanager
def session(api_args=(), tls=True):
    """check_setup(), then the fake API started with api_args:

        with common.session(["--offers", "300"]) as s:
            m = s.mount(["pods_ttl=600"])
            ... s.api.counts() ...
    """
    check_setup()
    with contextlib.ExitStack() as stack:
        yield Session(stack, api_args, tls)


def minimum_calls(api):
    """Pages each listing needs (ceil(total/100), at least 1), and 1 for
    the wallet. Asked of the fake directly; its counters are reset after."""
    out = {}
    for endpoint, path, key in LISTINGS:
        total = api.get(path)[key]
        out[endpoint] = max(1, math.ceil(total / PAGE))
        out[endpoint + " (items)"] = total
    out["GET /billing/wallet"] = 1
    api.reset()
    return out


def fetch_pages(api, minimum):
    """Seconds for a plain Python client to GET every page a full crawl
    needs (minimum from minimum_calls) and the wallet: what fetching the
    pages alone costs, the share of a cold crawl primefs cannot help."""
    pages = [("GET /availability/gpus", lambda i: f"/availability/gpus?page={i + 1}&page_size=100"),
             ("GET /availability/multi-node",
              lambda i: f"/availability/multi-node?page={i + 1}&page_size=100"),
             ("GET /pods", lambda i: f"/pods?offset={100 * i}&limit=100"),
             ("GET /pods/history", lambda i: f"/pods/history?offset={100 * i}&limit=100")]
    t = time.perf_counter()
    for endpoint, path in pages:
        for i in range(minimum[endpoint]):
            api.get(path(i))
    api.get("/billing/wallet?limit=1&offset=0")
    return time.perf_counter() - t


def crawl(root, sink=None):
    """What `ls -lR` and a `cat` of every file do: lstat every entry, read
    every readable regular file, readlink every link. Returns counts.
    sink(path, kind, data), if given, sees every entry ("dir", "file" with
    its bytes, "link" with its target)."""
    c = {"dirs": 0, "files": 0, "links": 0, "bytes": 0, "errors": 0}
    stack = [root]
    while stack:
        d = stack.pop()
        c["dirs"] += 1
        try:
            names = sorted(os.listdir(d))
        except OSError:
            c["errors"] += 1
            continue
        for name in names:
            p = os.path.join(d, name)
            try:
                st = os.lstat(p)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(p)
                    if sink:
                        sink(p, "dir", None)
                elif stat.S_ISLNK(st.st_mode):
                    target = os.readlink(p)
                    c["links"] += 1
                    if sink:
                        sink(p, "link", target)
                elif st.st_mode & 0o444:  # not ctl (write-only)
                    with open(p, "rb") as f:
                        data = f.read()
                    c["bytes"] += len(data)
                    c["files"] += 1
                    if sink:
                        sink(p, "file", data)
            except OSError:
                c["errors"] += 1
    return c


def timed(fn, *args):
    t = time.perf_counter()
    r = fn(*args)
    return time.perf_counter() - t, r


def pct(values, p):
    """Nearest-rank percentile of a list."""
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(p / 100 * len(v)) - 1))]


def vm(pid, key):
    """A VmXXX line of /proc/PID/status, in KiB (None if gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def table(headers, rows):
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print(line(r))


def calls_table(counts, minimum):
    """API calls per endpoint next to the minimum; every endpoint that was
    called or that a full crawl needs."""
    rows = []
    total = total_min = 0
    names = [e for e, _, _ in LISTINGS] + ["GET /billing/wallet"]
    names += sorted(e for e, n in counts.items() if n and e not in names)
    for e in names:
        n, m = counts.get(e, 0), minimum.get(e, 0)
        total += n
        total_min += m
        rows.append([e, n, m, "=" if n == m else f"{n - m:+d}"])
    rows.append(["total", total, total_min, "=" if total == total_min else f"{total - total_min:+d}"])
    table(["endpoint", "calls", "minimum", "vs minimum"], rows)
    return total, total_min


def fmt_s(seconds):
    return f"{seconds:.2f} s"


def fmt_us(ns):
    return f"{ns / 1000:.1f}"
