#!/usr/bin/python3
"""A userspace TCP proxy that adds a fixed one-way delay each way: a
round-trip time for benchmarks on a machine without netem (TESTING.md).

    p = DelayProxy(target_port, one_way=0.025)   # 50 ms RTT in front of it
    p.port                                       # connect here instead
    p.stop()

    bench/delay_proxy.py --target PORT [--rtt-ms 50]   # prints its port, runs

Each accepted connection gets its own connection to the target and two
pumps, one per direction. A pump's reader takes bytes as soon as they come
(so TCP flow control never holds the sender: the link's bandwidth is what
the machine can copy) and stamps them; its writer sends each chunk, in
order, once its stamp is `one_way` old. Nagle is off on every socket, so a
small write is not held back waiting for an ACK: the delay is the one
asked for, not more. An end of file is passed on with the same delay
(shutdown of the write side); an error closes both sides.
"""

import argparse
import collections
import socket
import sys
import threading
import time

CHUNK = 256 * 1024


def _nodelay(s):
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Pump:
    """src -> dst, each chunk sent one_way seconds after it was read."""

    def __init__(self, src, dst, one_way, on_error):
        self.src, self.dst, self.one_way = src, dst, one_way
        self.on_error = on_error
        self.q = collections.deque()
        self.cv = threading.Condition()
        for fn in (self._read, self._write):
            threading.Thread(target=fn, daemon=True).start()

    def _put(self, item):
        with self.cv:
            self.q.append(item)
            self.cv.notify()

    def _read(self):
        try:
            while True:
                data = self.src.recv(CHUNK)
                self._put((time.monotonic() + self.one_way, data))
                if not data:
                    return
        except OSError:
            self._put((0, None))

    def _write(self):
        try:
            while True:
                with self.cv:
                    while not self.q:
                        self.cv.wait()
                    due, data = self.q.popleft()
                if data is None:
                    raise OSError("reader failed")
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    self.dst.shutdown(socket.SHUT_WR)
                    return
                self.dst.sendall(data)
        except OSError:
            self.on_error()


class DelayProxy:
    def __init__(self, target_port, one_way=0.025, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.one_way = one_way
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            for s in (c, u):
                _nodelay(s)
            with self.lock:
                self.conns += [c, u]

            def close(c=c, u=u):
                for s in (c, u):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

            _Pump(c, u, self.one_way, close)
            _Pump(u, c, self.one_way, close)

    def stop(self):
        self.sock.close()
        with self.lock:
            for s in self.conns:
                try:
                    s.close()
                except OSError:
                    pass
            self.conns = []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", type=int, required=True, help="port on 127.0.0.1")
    ap.add_argument("--rtt-ms", type=float, default=50)
    a = ap.parse_args()
    p = DelayProxy(a.target, a.rtt_ms / 2000)
    print(p.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        p.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
