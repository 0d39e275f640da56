#!/usr/bin/python3
"""A TCP proxy that adds a round-trip time: every byte is held rtt/2 in
each direction (this kernel has no sch_netem, see TESTING.md). Order is
kept and nothing else is shaped (no bandwidth cap, no loss).

    with DelayProxy(target_port, rtt=0.05) as p:   # listens on p.port
        ...
    bench/delay_proxy.py TARGET_PORT RTT_MS       # prints its port, runs
"""

import asyncio
import socket
import sys
import threading
import time


class DelayProxy:
    def __init__(self, target_port, rtt, host="127.0.0.1"):
        self.target = (host, target_port)
        self.delay = rtt / 2
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _pipe(self, reader, writer):
        q = asyncio.Queue()

        async def pump_out():
            while True:
                due, data = await q.get()
                if data is None:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            try:
                writer.write_eof()
            except OSError:
                pass

        out = asyncio.ensure_future(pump_out())
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                q.put_nowait((time.monotonic() + self.delay, data))
        except OSError:
            pass
        q.put_nowait((0, None))
        try:
            await out
        except OSError:
            pass

    async def _client(self, reader, writer):
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            r2, w2 = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        w2.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(self._pipe(reader, w2), self._pipe(r2, writer),
                             return_exceptions=True)
        writer.close()
        w2.close()

    def close(self):
        async def stop():
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    p = DelayProxy(int(sys.argv[1]), float(sys.argv[2]) / 1000)
    print(p.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
