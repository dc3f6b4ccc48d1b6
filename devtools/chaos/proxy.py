"""A small TCP fault proxy of our own, in front of RabbitMQ or PostgreSQL on loopback.

Modes: ``pass``; ``blackhole`` (bytes stop flowing both ways and new connections hang, but
sockets stay open: what a partition looks like to a protocol with heartbeats, such as AMQP);
``reset`` (every proxied connection is aborted with RST, and new ones too). A userspace proxy
cannot stop TCP's own ACKs and keepalive answers, so for libpq (no heartbeat of its own) the
partition is cut below it, by taking down the link of a network namespace the proxy listens
in (``netns.Partition``). Toxiproxy cannot be installed here and ``tc netem`` is not in this
kernel, hence our own. Runs on a thread of the process that owns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable

MODES = ("pass", "blackhole", "reset")


class FaultProxy:
    """Parameters:
    upstream: (host, port) the proxy connects to, from this process's network namespace.
    listen: a bound, listening socket, or None for a free port on 127.0.0.1.
    """

    def __init__(self, upstream: tuple[str, int], listen: socket.socket | None = None) -> None:
        self.upstream = upstream
        self.sock = listen or _listen("127.0.0.1")
        self.mode = "pass"
        self.accepted = 0
        self.resets = 0
        self._loop = asyncio.new_event_loop()
        self._open = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._started = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> FaultProxy:
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self) -> None:
        self._call(self._close_all)
        self._call(self._cancel_tasks)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self.sock.close()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self._call(lambda: self._apply(mode))

    def _call(self, fn: Callable[[], None]) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)

    def _apply(self, mode: str) -> None:
        self.mode = mode
        if mode == "pass":
            self._open.set()
        else:
            self._open.clear()
        if mode == "reset":
            self.resets += len(self._writers)
            self._close_all()

    def _cancel_tasks(self) -> None:
        for task in asyncio.all_tasks(self._loop):
            task.cancel()

    def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._open.set()
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, sock=self.sock))
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(self._loop)
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "reset":
            self.resets += 1
            writer.transport.abort()
            return
        self._writers.add(writer)
        try:
            await self._open.wait()  # a blackhole: the connection hangs before it reaches upstream
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._writers.discard(writer)
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        for w in (writer, up_writer):
            self._writers.discard(w)
            with contextlib.suppress(Exception):
                w.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                await self._open.wait()  # held while blackholed: nothing gets through
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.transport.abort() if self.mode == "reset" else dst.write_eof()


def _listen(host: str, port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock
