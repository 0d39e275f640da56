#!/usr/bin/python3
"""primefs beside libfuse's passthrough_ll: every row of issue 11's table.

The anchor is libfuse's own low-level example, passthrough_ll, built from
/usr/share/doc/libfuse3-dev/examples/ into a temp dir (with two changes
that let it hold ~190k inodes here: see PATCHES) and run with full
caching (-o cache=always: entry and attribute timeouts of 86400 s,
keep_cache on files, cache_readdir on directories) over a tmpfs
(/dev/shm) copy of primefs's whole tree at 10,000 offers and 1,000 pods.
Both are mounted at the same time and measured in the same run:

  - warm `ls -lR > /dev/null` (each run twice, interleaved; the second);
  - warm read of every file (one Python process walks and reads: the same
    code for both; twice each, the second);
  - warm open+read+close of one value file (interleaved, µs per op: mean
    and median);
  - cold `ls -lR` of primefs right after `echo refresh > ctl`, against the
    pages alone (a plain Python client GETs every page from the fake, as
    bench/scale.py measures it) plus the anchor's warm `ls -lR`;
  - the daemon's peak RSS (VmHWM) after a full crawl (stat and read every
    file) against 64 MiB;
  - API calls of that crawl (cold `ls -lR` + the full crawl) against one
    per page.

For the rows over goal, where the time goes, on one subtree (pods/): FUSE
requests of a warm `ls -lR` and of a warm read of every file, and per
open+read+close of the value file (primefs: its `stats` file;
passthrough_ll: a second instance run with -d over the same copy, its
requests counted by opcode), and `perf record -g` of each daemon during
warm runs over the subtree (top symbols, self time), if perf is installed.
Asserts nothing.

    bench/anchor.py [--offers 10000] [--pods 1000] [--reads 5000] [--no-diag]
                    [--diag-dir pods]
"""

import argparse
import collections
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

EXAMPLES = Path("/usr/share/doc/libfuse3-dev/examples")
GOAL_RSS_KIB = 64 * 1024


# Two changes to passthrough_ll.c so that it can serve ~190k inodes here,
# made on a copy at build time and printed with the results. As shipped,
# (1) it finds an inode by walking a list of all of them (lo_find), which
# READDIRPLUS does for every entry: quadratic in the tree; (2) it keeps an
# O_PATH descriptor open for every inode the kernel knows, and the
# descriptor limit here is 20000 (hard, and no CAP_SYS_RESOURCE to raise
# it). So: a hash table beside the list; and a file or link (not a
# directory) keeps its parent and name instead of a descriptor, which
# lo_fd opens when a request needs it (closed at the thread's next one).
# The per-request work is otherwise the example's own.
PATCHES = [
    ("struct lo_inode {\n",
     "struct lo_inode {\n\tstruct lo_inode *hnext, *parent; char *name;\n"),
    ("static struct lo_inode *lo_find(struct lo_data *lo, struct stat *st)\n{",
     "#define LO_HASH (1u << 18)\n"
     "static struct lo_inode *lo_hash[LO_HASH];\n"
     "static unsigned lo_hkey(ino_t ino, dev_t dev)\n"
     "{\n\treturn (unsigned)((ino * 0x9e3779b97f4a7c15ull) ^ dev) & (LO_HASH - 1);\n}\n"
     "static struct lo_inode *lo_find(struct lo_data *lo, struct stat *st)\n{"),
    ("\tfor (p = lo->root.next; p != &lo->root; p = p->next) {",
     "\tfor (p = lo_hash[lo_hkey(st->st_ino, st->st_dev)]; p; p = p->hnext) {"),
    ("\t\tinode->fd = newfd;\n",
     "\t\tif (S_ISDIR(e->attr.st_mode)) {\n\t\t\tinode->fd = newfd;\n"
     "\t\t} else {\n\t\t\tinode->fd = -1;\n\t\t\tclose(newfd);\n"
     "\t\t\tinode->parent = lo_inode(req, parent);\n"
     "\t\t\tinode->name = strdup(name);\n"
     "\t\t\tpthread_mutex_lock(&lo->mutex);\n"
     "\t\t\tinode->parent->refcount++;\n"
     "\t\t\tpthread_mutex_unlock(&lo->mutex);\n\t\t}\n\t\tnewfd = -1;\n"),
    ("\t\tprev->next = inode;\n\t\tpthread_mutex_unlock(&lo->mutex);",
     "\t\tprev->next = inode;\n"
     "\t\tinode->hnext = lo_hash[lo_hkey(inode->ino, inode->dev)];\n"
     "\t\tlo_hash[lo_hkey(inode->ino, inode->dev)] = inode;\n"
     "\t\tpthread_mutex_unlock(&lo->mutex);"),
    ("\t\tprev->next = next;\n\n\t\tpthread_mutex_unlock(&lo->mutex);\n"
     "\t\tclose(inode->fd);\n\t\tfree(inode);\n",
     "\t\tprev->next = next;\n"
     "\t\tfor (struct lo_inode **h = &lo_hash[lo_hkey(inode->ino, inode->dev)]; *h;"
     " h = &(*h)->hnext)\n"
     "\t\t\tif (*h == inode) {\n\t\t\t\t*h = inode->hnext;\n\t\t\t\tbreak;\n\t\t\t}\n"
     "\n\t\tpthread_mutex_unlock(&lo->mutex);\n"
     "\t\tif (inode->fd >= 0)\n\t\t\tclose(inode->fd);\n"
     "\t\tif (inode->parent)\n\t\t\tunref_inode(lo, inode->parent, 1);\n"
     "\t\tfree(inode->name);\n\t\tfree(inode);\n"),
    ("static int lo_fd(fuse_req_t req, fuse_ino_t ino)\n{\n\treturn lo_inode(req, ino)->fd;\n}",
     "static __thread int lo_tmp_fd = -1;\n"
     "static int lo_fd(fuse_req_t req, fuse_ino_t ino)\n{\n"
     "\tstruct lo_inode *in = lo_inode(req, ino);\n"
     "\tif (in->fd >= 0)\n\t\treturn in->fd;\n"
     "\tif (lo_tmp_fd >= 0)\n\t\tclose(lo_tmp_fd);\n"
     "\tlo_tmp_fd = openat(in->parent->fd, in->name, O_PATH | O_NOFOLLOW);\n"
     "\treturn lo_tmp_fd;\n}"),
]


def build_anchor(outdir):
    """passthrough_ll built from the Debian examples (with PATCHES), or
    None (and why on stderr)."""
    src = EXAMPLES / "passthrough_ll.c"
    if not src.exists():
        print(f"{src} is missing. It ships with Debian's libfuse3-dev: "
              "`apt-get install libfuse3-dev`; if the package is installed but "
              "the file is not, dpkg was told to skip /usr/share/doc "
              "(/etc/dpkg/dpkg.cfg.d/, as in slim container images): remove that "
              "path-exclude and `apt-get install --reinstall libfuse3-dev`.",
              file=sys.stderr)
        return None
    text = src.read_text()
    for old, new in PATCHES:
        if text.count(old) != 1:
            print(f"{src} is not the one this bench patches (libfuse 3.14): "
                  f"{old.splitlines()[0]!r} not found once", file=sys.stderr)
            return None
        text = text.replace(old, new)
    # unref_inode now calls itself for the parent: declare it first.
    text = text.replace("static int lo_fd(fuse_req_t req, fuse_ino_t ino)\n{",
                        "static void unref_inode(struct lo_data *lo, struct lo_inode *inode,"
                        " uint64_t n);\nstatic int lo_fd(fuse_req_t req, fuse_ino_t ino)\n{", 1)
    patched = os.path.join(outdir, "passthrough_ll.c")
    Path(patched).write_text(text)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"],
                           capture_output=True, text=True)
    if flags.returncode != 0:
        print("pkg-config fuse3 failed: " + flags.stderr, file=sys.stderr)
        return None
    exe = os.path.join(outdir, "passthrough_ll")
    cc = subprocess.run(["cc", "-O2", "-I", str(EXAMPLES), "-o", exe, patched,
                         *flags.stdout.split()], capture_output=True, text=True)
    if cc.returncode != 0:
        print("building passthrough_ll failed:\n" + cc.stderr, file=sys.stderr)
        return None
    return exe


class Anchor:
    """passthrough_ll mounted in the foreground over `source`."""

    def __init__(self, s, exe, source, debug_log=None):
        self.path = s.tmpdir(prefix="primefs-anchor.")
        cmd = [exe, "-f", "-o", f"source={source},cache=always", self.path]
        out = subprocess.DEVNULL
        if debug_log:
            cmd.insert(1, "-d")
            out = open(debug_log, "w")
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=out)
        s.cleanup(self.stop)
        deadline = time.time() + 10
        while not common.conftest.mounted(self.path):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("passthrough_ll did not mount")
            time.sleep(0.02)

    def stop(self):
        if common.conftest.mounted(self.path):
            subprocess.run(["fusermount3", "-u", "-z", self.path], stderr=subprocess.DEVNULL)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def ls_lR(root):
    """Seconds of the real `ls -lR root > /dev/null`."""
    t = time.perf_counter()
    subprocess.run(["ls", "-lR", root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def read_all(root):
    """Walks root (scandir, no stat of its own) and reads every regular
    file to its end: (seconds, files read, bytes, errors)."""
    t = time.perf_counter()
    files = nbytes = errors = 0
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = list(it)
        except OSError:
            errors += 1
            continue
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            elif e.is_file(follow_symlinks=False):
                try:
                    fd = os.open(e.path, os.O_RDONLY)
                except OSError:
                    errors += 1  # primefs's ctl is write-only
                    continue
                try:
                    while True:
                        chunk = os.read(fd, 1 << 17)
                        if not chunk:
                            break
                        nbytes += len(chunk)
                    files += 1
                except OSError:
                    errors += 1
                finally:
                    os.close(fd)
    return time.perf_counter() - t, files, nbytes, errors


def one_file(a, b, n):
    """n interleaved open+read+close of a and of b: times in ns."""
    ta, tb = [], []
    clock = time.perf_counter_ns
    for i in range(n):
        for path, out in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
            t = clock()
            fd = os.open(path, os.O_RDONLY)
            os.read(fd, 65536)
            os.close(fd)
            out.append(clock() - t)
    return ta, tb


def copy_tree(src, dst):
    """A full crawl of src (lstat and read of every entry), copied into dst
    as it goes; returns the crawl's counts."""
    def sink(p, kind, data):
        q = os.path.join(dst, os.path.relpath(p, src))
        if kind == "dir":
            os.makedirs(q, exist_ok=True)
        elif kind == "link":
            os.symlink(data, q)
        else:
            with open(q, "wb") as f:
                f.write(data)
    return common.crawl(src, sink)


def stats_delta(m, before):
    after = m.stats()
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


class DebugCounts:
    """Requests passthrough_ll -d logged, by opcode, between marks."""

    LINE = re.compile(rb"^unique: \d+, opcode: (\w+) ", re.M)

    def __init__(self, log):
        self.log = log
        self.pos = 0

    def mark(self):
        self.pos = os.path.getsize(self.log)

    def since(self):
        time.sleep(0.2)  # the last replies' lines
        with open(self.log, "rb") as f:
            f.seek(self.pos)
            data = f.read()
        self.pos += len(data)
        return collections.Counter(m.decode() for m in self.LINE.findall(data))


def perf_top(pid, work, n=15):
    """perf record -g of pid during work(): the top n symbols by self time."""
    data = tempfile.mktemp(prefix="primefs-bench-perf.")
    rec = subprocess.Popen(["perf", "record", "-q", "-g", "-o", data, "-p", str(pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    work()
    rec.send_signal(signal.SIGINT)
    rec.wait(30)
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
                          "--sort", "dso,sym", "--percent-limit", "0.5"],
                         capture_output=True, text=True)
    try:
        os.unlink(data)
        os.unlink(data + ".old")
    except OSError:
        pass
    lines = [ln for ln in rep.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
    return lines[:n]


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offers", type=int, default=10000)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--reads", type=int, default=5000, help="open+read+close of one file, each")
    ap.add_argument("--file", default="pods/demo/status")
    ap.add_argument("--no-diag", action="store_true", help="skip request counts and perf")
    ap.add_argument("--diag-dir", default="pods", help="the subtree request counts and perf see")
    args = ap.parse_args()
    common.check_setup()
    t_start = time.perf_counter()
    with common.session(["--offers", str(args.offers), "--pods", str(args.pods)]) as s:
        exe = build_anchor(s.tmpdir())
        if exe is None:
            return 1
        api = s.api
        minimum = common.minimum_calls(api)
        pages = sum(v for k, v in minimum.items() if not k.endswith("(items)"))
        t_pages = common.fetch_pages(api, minimum)
        api.reset()
        m = s.mount(["pods_ttl=600", "offers_ttl=600"])
        pid = m.proc.pid

        # Cold ls -lR, then a full crawl that copies the tree into tmpfs.
        m.write("ctl", "refresh\n")
        api.reset()
        t_cold = ls_lR(m.path)
        shm = s.tmpdir(dir="/dev/shm")
        c = copy_tree(m.path, shm)
        calls = api.counts()
        rss_crawl = common.vm(pid, "VmHWM")
        a = Anchor(s, exe, shm)

        # Warm ls -lR: p, a, p, a; the second of each counts.
        ls_p, ls_a = [], []
        before = None
        for i in range(2):
            if i == 1:
                before = m.stats()
            ls_p.append(ls_lR(m.path))
            if i == 1:
                req_ls = stats_delta(m, before)
            ls_a.append(ls_lR(a.path))
        # Warm read of every file: primefs is warm from the copy's crawl,
        # the anchor reads everything once first (its page cache).
        rd_a0 = read_all(a.path)
        before = m.stats()
        rd_p = read_all(m.path)
        req_rd = stats_delta(m, before)
        rd_a = read_all(a.path)
        # One value file.
        one_p, one_a = m.p(args.file), os.path.join(a.path, args.file)
        one_file(one_p, one_a, 200)
        before = m.stats()
        o_p, o_a = one_file(one_p, one_a, args.reads)
        req_one = stats_delta(m, before)
        warm_calls = sum(api.counts().values()) - sum(calls.values())
        rss_end = common.vm(pid, "VmHWM")

        mean = statistics.fmean
        med = statistics.median
        cold_base = t_pages + ls_a[1]
        log_calls = sum(v for k, v in calls.items() if k.endswith("/log"))
        page_calls = sum(calls.values()) - log_calls
        goals = {
            "ls": ls_p[1] / ls_a[1] <= 1.2,
            "read": rd_p[0] / rd_a[0] <= 1.2,
            "one": mean(o_p) / mean(o_a) <= 1.2,
            "cold": t_cold / cold_base <= 1.5,
            "rss": rss_crawl is not None and rss_crawl <= GOAL_RSS_KIB,
            "calls": page_calls == pages,
        }
        ok = lambda g: "met" if goals[g] else "NOT met"  # noqa: E731

        print(f"== anchor: primefs beside passthrough_ll (-o cache=always over a tmpfs copy), "
              f"--offers {args.offers} --pods {args.pods}")
        print("passthrough_ll: Debian's example + a hash table for lo_find and no O_PATH "
              "descriptor kept per file (the fd limit here is 20000): bench/anchor.py PATCHES")
        print(f"tree: {c['dirs']} dirs, {c['files']} files ({c['bytes'] / 1e6:.1f} MB), "
              f"{c['links']} links; crawl errors {c['errors']}; "
              f"read_all: {rd_p[1]} files, {rd_p[2] / 1e6:.1f} MB, "
              f"errors primefs {rd_p[3]} / anchor {rd_a[3]} (ctl is write-only)")
        print(f"load average at start of the table: {os.getloadavg()[0]:.2f} (2 cores)")
        print()
        mib = lambda kib: f"{kib / 1024:.1f} MiB" if kib is not None else "?"  # noqa: E731
        common.table(["measure", "primefs", "anchor", "ratio", "goal", ""], [
            ["warm ls -lR (2nd run)", common.fmt_s(ls_p[1]), common.fmt_s(ls_a[1]),
             ratio(ls_p[1], ls_a[1]), "<= 1.2x", ok("ls")],
            ["warm read of every file", common.fmt_s(rd_p[0]),
             common.fmt_s(rd_a[0]), ratio(rd_p[0], rd_a[0]), "<= 1.2x", ok("read")],
            [f"warm open+read+close {args.file}, mean us (x{args.reads})",
             common.fmt_us(mean(o_p)), common.fmt_us(mean(o_a)), ratio(mean(o_p), mean(o_a)),
             "<= 1.2x", ok("one")],
            ["  the same, median us", common.fmt_us(med(o_p)), common.fmt_us(med(o_a)),
             ratio(med(o_p), med(o_a)), "", ""],
            ["cold ls -lR / (pages alone + anchor warm ls -lR)", common.fmt_s(t_cold),
             f"{common.fmt_s(t_pages)} + {common.fmt_s(ls_a[1])}", ratio(t_cold, cold_base),
             "<= 1.5x", ok("cold")],
            ["daemon VmHWM after a full crawl", mib(rss_crawl), "", "", "<= 64 MiB", ok("rss")],
            ["API calls of the crawl (pages; + pod logs)", f"{page_calls} + {log_calls}",
             f"{pages} pages", "", "one per page", ok("calls")],
        ])
        print(f"(warm runs 1st/2nd: ls -lR primefs {ls_p[0]:.2f}/{ls_p[1]:.2f} s, anchor "
              f"{ls_a[0]:.2f}/{ls_a[1]:.2f} s; read: anchor's first {rd_a0[0]:.2f} s; "
              f"API calls during the warm runs (pod logs): "
              f"{warm_calls}; VmHWM at the end {mib(rss_end)})")
        print()
        print("API calls of the crawl (cold ls -lR + stat and read of every file):")
        common.calls_table(calls, minimum)
        print("(pods/*/log: one call each by design, rate-limited to a burst of 10)")

        if args.no_diag or all(goals[g] for g in ("ls", "read", "one", "cold")):
            print(f"\ntotal run time {time.perf_counter() - t_start:.0f} s")
            return 0

        # Where the time goes, on one subtree (the whole tree through -d
        # takes minutes): requests per warm run for both daemons, and a
        # profile of each.
        sub = args.diag_dir
        print()
        t = time.perf_counter()
        before = m.stats()
        ls_lR(m.p(sub))
        req_ls = stats_delta(m, before)
        before = m.stats()
        read_all(m.p(sub))
        req_rd = stats_delta(m, before)
        dlog = os.path.join(s.tmpdir(), "passthrough_ll-d.log")
        ad = Anchor(s, exe, shm, debug_log=dlog)
        dc = DebugCounts(dlog)
        ls_lR(os.path.join(ad.path, sub))  # cold for it
        read_all(os.path.join(ad.path, sub))
        dc.mark()
        ls_lR(os.path.join(ad.path, sub))
        dreq_ls = dc.since()
        read_all(os.path.join(ad.path, sub))
        dreq_rd = dc.since()
        one_file(os.path.join(ad.path, args.file), os.path.join(ad.path, args.file), 500)
        dreq_one = dc.since()
        ad.stop()
        n_one = 2 * 500
        n_sub = read_all(m.p(sub))[1]
        print(f"FUSE requests of a warm ls -lR and a warm read of every file of {sub}/ "
              f"({n_sub} files), and per open+read+close of {args.file} (primefs: its stats "
              f"file; passthrough_ll: -d, a second instance; counted in "
              f"{time.perf_counter() - t:.0f} s).")
        pf = [("LOOKUP", "fuse_lookup", ("LOOKUP",)),
              ("GETATTR", "fuse_getattr", ("GETATTR",)),
              ("READDIR(PLUS)", "fuse_readdir", ("READDIR", "READDIRPLUS")),
              ("OPEN", "fuse_open", ("OPEN",)),
              ("READ", "fuse_read", ("READ",)),
              ("OPENDIR", "fuse_opendir", ("OPENDIR",)),
              ("RELEASEDIR", "fuse_releasedir", ("RELEASEDIR",)),
              ("FLUSH", "fuse_flush", ("FLUSH",)),
              ("RELEASE", "fuse_release", ("RELEASE",)),
              ("FORGET", "fuse_forget", ("FORGET", "BATCH_FORGET"))]
        shown = {op for _, _, ops in pf for op in ops}
        others = sorted({op for d in (dreq_ls, dreq_rd, dreq_one) for op in d} - shown)
        pf += [(op, None, (op,)) for op in others]
        rows = []
        for label, key, ops in pf:
            row = [label]
            for req, dreq, n in ((req_ls, dreq_ls, 1), (req_rd, dreq_rd, 1),
                                 (req_one, dreq_one, n_one)):
                p = req.get(key, 0) if key else None
                row.append("-" if p is None else (str(p) if n == 1 else f"{p / args.reads:.2f}"))
                d = sum(dreq.get(op, 0) for op in ops)
                row.append(str(d) if n == 1 else f"{d / n:.2f}")
            rows.append(row)
        common.table(["request", "ls -lR primefs", "anchor", "read all primefs", "anchor",
                      "one file primefs /op", "anchor /op"], rows)
        if shutil.which("perf"):
            for name, p, root in (("primefs", pid, m.p(sub)),
                                  ("passthrough_ll", a.proc.pid, os.path.join(a.path, sub))):
                print()
                print(f"perf record -g of {name} (pid {p}) during 3 warm ls -lR and reads of "
                      f"every file of {sub}/: top symbols, self time")
                work = lambda: [(ls_lR(root), read_all(root)) for _ in range(3)]  # noqa: E731
                for line in perf_top(p, work):
                    print("  " + line.strip())
        else:
            print("\n(perf not installed: no profile)")
        print(f"\ntotal run time {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
