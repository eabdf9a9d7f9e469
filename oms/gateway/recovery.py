"""Recovery after a crash or a venue disconnect: what the gateway must learn before it takes new orders.

At every venue logon (the first one after a start included):
1. ExecutionReports the venue sent while we were down, or that QuickFIX had counted as received but we had
   not committed, come back through FIX resend: `AppliedSeq` remembers the venue MsgSeqNum of the last report
   whose batch was committed and relayed, and at a start the venue session's expected sequence number is
   lowered to the next one before logon, so the venue resends the rest (a reconnect without a restart needs
   no such step: the worker still holds what QuickFIX handed it). ExecID de-duplication applies each once; a duplicate
   that arrives as a resend is relayed again with PossResend=Y (the client may not have heard of it).
2. Outbox rows never sent go out once (a row attempted but not known sent goes with PossResend=Y).
3. Orders whose request reached the venue but whose outcome we do not know (PendingNew with its
   NewOrderSingle sent, PendingCancel, PendingReplace) are asked about with OrderStatusRequest. An answer
   "unknown order" means the venue never got the request: it is queued again. An answer that leaves the
   order pending on our side, or no answer within `RecoveryTimeoutMs`, leaves the order unresolved: it keeps
   its reservation and is reported (log `order_outcome_unknown`, metric `oms_gateway_unresolved_orders`,
   `oms gateway unresolved`), never released.
Until step 3 is over, new client requests (D, F, G) are rejected with VENUE_RECOVERING.

Client sessions get the same treatment as step 1 at every start: a per-session `AppliedSeq` holds the
MsgSeqNum of the last request the worker committed or answered, and the session's expected sequence number
is lowered to just after it, so a client resends (PossDup) what a crash kept us from handling.

A database outage while the venue session stays up is not a recovery round: the worker holds the reports it
could not book, in arrival order, and retries them until the database is back (see `Worker._hold`); the
applied mark stays below the first held report, so a crash in the meantime replays them from the venue.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

WIDTH = 20  # fixed-width decimal: every write overwrites the whole previous value


class AppliedSeq:
    """The venue MsgSeqNum up to which every ExecutionReport is committed and relayed, in a small file
    beside the venue session's QuickFIX store.

    Written after each batch without fsync: after a process crash the page cache still holds it; after a
    machine crash an older value only means more resent reports, which ExecID de-duplication absorbs.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._last: int | None = self.read()

    def read(self) -> int | None:
        try:
            text = os.pread(self._fd, WIDTH, 0).decode("ascii").strip()
            return int(text) if text else None
        except (OSError, ValueError):
            return None

    @property
    def last(self) -> int | None:
        """The value last read or written by this process (no system call)."""
        return self._last

    def write(self, seq: int) -> None:
        if seq != self._last:
            os.pwrite(self._fd, str(seq).rjust(WIDTH).encode("ascii"), 0)
            self._last = seq

    def close(self) -> None:
        os.close(self._fd)

    @staticmethod
    def next_expected(store_next: int, applied: int | None) -> int:
        """The sequence number to expect next from the venue: never above the store's (a sequence reset
        makes the file stale and it is ignored), never below 1."""
        if applied is None or applied + 1 >= store_next:
            return store_next
        return max(1, applied + 1)


@dataclass(frozen=True, slots=True)
class Question:
    """One OrderStatusRequest of the current recovery."""

    order_id: str
    venue_cl_ord_id: str
    status: str  # our order status when we asked


@dataclass
class RecoveryRound:
    """The open questions of one recovery round and what it found unresolved (worker thread only)."""

    open: dict[str, Question] = field(default_factory=dict)  # venue ClOrdID -> question
    unresolved: dict[str, str] = field(default_factory=dict)  # our order id -> why

    def answer(self, venue_cl_ord_id: str) -> Question | None:
        return self.open.pop(venue_cl_ord_id, None)

    @property
    def done(self) -> bool:
        return not self.open
