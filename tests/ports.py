"""Free TCP ports for servers the tests start, chosen outside the kernel's ephemeral range.

A port found free by binding port 0 comes from the ephemeral range, the same range the kernel hands out as
the source port of outgoing connections: between the probe and the server's own bind, a test's client
connection can take it ("Address already in use", seen once in CI when QuickFIX's acceptor started). Below
that range only servers bind, so a port that binds now stays free for the server that asked for it.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000


def _ephemeral_low() -> int:
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def free_port() -> int:
    """A TCP port on 127.0.0.1 that no socket holds now, outside the ephemeral range when there is room."""
    high = _ephemeral_low() - 1
    for _ in range(200):
        port = random.randint(_LOWEST, high) if high > _LOWEST else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise RuntimeError("no free TCP port found below the ephemeral range")
