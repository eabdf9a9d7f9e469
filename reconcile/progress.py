"""A progress line on stderr for long report reads: redrawn in place on a terminal, one line per tenth elsewhere
(cron mail, ``--progress`` into a log). Never written to stdout, which may carry the run's own output."""

from __future__ import annotations

import sys
from typing import TextIO


class Ticker:
    """Counts bytes read against the report's size; call ``done`` once the read is over."""

    def __init__(self, total_bytes: int, label: str = "reading report", stream: TextIO | None = None) -> None:
        self.total = max(total_bytes, 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty()
        self.read = 0
        self._shown = -1

    def __call__(self, read_bytes: int) -> None:
        self.read = min(self.total, self.read + read_bytes)
        percent = self.read * 100 // self.total
        step = percent if self.interactive else percent // 10 * 10
        if step != self._shown:
            self._shown = step
            self._draw(step)

    def _draw(self, percent: int) -> None:
        filled = percent * 30 // 100
        text = f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {percent:3d}%"
        self.stream.write(("\r" + text) if self.interactive else text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self._shown != 100:
            self.read = self.total
            self._shown = 100
            self._draw(100)
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()
