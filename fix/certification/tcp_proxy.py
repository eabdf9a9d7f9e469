"""A TCP proxy that breaks the network on command, for network-fault drills between two FIX engines.

    proxy = FaultProxy(upstream_port=9880).start()      # listen on proxy.port, forward to 127.0.0.1:9880
    proxy.cut()            # close every connection now (both sides see a reset/EOF)
    proxy.set_delay(0.5)   # hold each chunk for 0.5 s before forwarding
    proxy.stall()          # stop forwarding but keep sockets open: a half-open, silent link
    proxy.corrupt_next()   # flip one byte in the next chunk (a garbled message)
    proxy.heal()           # back to a clean pass-through
    proxy.refuse(True)     # refuse new connections (venue "down") until refuse(False)

Threads, not asyncio: each connection has one pump thread per direction; everything is bounded
(chunk size, join timeouts) so a stuck peer never hangs the drill.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

CHUNK_BYTES = 65536
POLL_S = 0.05


@dataclass
class _Link:
    client: socket.socket
    upstream: socket.socket
    threads: list[threading.Thread] = field(default_factory=list)
    closed: bool = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class FaultProxy:
    """Forwards 127.0.0.1:`port` to `upstream_host`:`upstream_port`, with faults switched on at will."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1", listen_port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", listen_port), reuse_port=False)
        self._listener.settimeout(POLL_S)
        self.port: int = self._listener.getsockname()[1]
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._delay_s = 0.0
        self._stalled = threading.Event()
        self._corrupt_next = False
        self._refusing = False
        self.connections_accepted = 0
        self.bytes_forwarded = 0
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-proxy-accept", daemon=True)

    # ------------------------------------------------------------------ faults
    def cut(self) -> None:
        """Close every live connection at once."""
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()

    def set_delay(self, seconds: float) -> None:
        self._delay_s = max(0.0, seconds)

    def stall(self) -> None:
        self._stalled.set()

    def corrupt_next(self) -> None:
        self._corrupt_next = True

    def refuse(self, refusing: bool = True) -> None:
        """While refusing, new connections are closed at once (and live ones are cut)."""
        self._refusing = refusing
        if refusing:
            self.cut()

    def heal(self) -> None:
        self._delay_s = 0.0
        self._stalled.clear()
        self._corrupt_next = False
        self._refusing = False

    @property
    def live_connections(self) -> int:
        with self._lock:
            return sum(1 for link in self._links if not link.closed)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FaultProxy:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._acceptor.join(timeout=2)
        self._listener.close()
        self.cut()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ pumps
    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=2)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(POLL_S)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(client, upstream)
            with self._lock:
                self._links.append(link)
                self.connections_accepted += 1
            for source, sink, name in ((client, upstream, "up"), (upstream, client, "down")):
                thread = threading.Thread(target=self._pump, args=(link, source, sink), daemon=True,
                                          name=f"fault-proxy-{name}")
                link.threads.append(thread)
                thread.start()

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket) -> None:
        while not link.closed and not self._stopping.is_set():
            if self._stalled.is_set():
                time.sleep(POLL_S)
                continue
            try:
                data = source.recv(CHUNK_BYTES)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            if self._delay_s:
                time.sleep(self._delay_s)
            while self._stalled.is_set() and not link.closed:
                time.sleep(POLL_S)
            if self._corrupt_next:
                self._corrupt_next = False
                middle = len(data) // 2
                data = data[:middle] + bytes([data[middle] ^ 0x20]) + data[middle + 1:]
            try:
                sink.sendall(data)
            except OSError:
                break
            self.bytes_forwarded += len(data)
        link.close()
