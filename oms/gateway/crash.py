"""Named crash points for the recovery drills: `GATEWAY_CRASH_AT=<point>` makes the gateway die there, hard.
(Not OMS_-prefixed: `oms.settings` refuses unknown OMS_* names, and a drill knob is no product setting.)

The process ends with `os._exit` (no cleanup, no flush of QuickFIX or the database), the closest a test can
get to a power cut. Read once at import: when the variable is unset every `at()` is one comparison with
None, and the commit hook of `mid_fill_apply` is not even installed.

    before_order_commit       a client's NewOrderSingle reached the worker (QuickFIX counted it as received);
                              nothing of it is committed yet
    after_reservation_commit  the order, its reservation and its outbox row are committed; nothing sent yet
    after_send_before_ack     a NewOrderSingle went to the venue; its acknowledgement is not applied yet
    mid_fill_apply            a fill's postings are written inside the open transaction, before its commit
    between_fill_and_relay    a fill is committed; the client has not been told
    between_outcome_and_relay the venue's answer to a cancel or replace (Canceled, Replaced, OrderCancelReject)
                              is committed; the client has not been told
"""

from __future__ import annotations

import os
import sys
import threading
import time

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

ENVIRONMENT_VARIABLE = "GATEWAY_CRASH_AT"
POINTS = frozenset({"before_order_commit", "after_reservation_commit", "after_send_before_ack", "mid_fill_apply",
                    "between_fill_and_relay", "between_outcome_and_relay"})
EXIT_CODE = 86  # distinct from every ordinary exit code, so a drill can tell the crash from a failure

ARMED: str | None = os.environ.get(ENVIRONMENT_VARIABLE) or None
_applying_fill = threading.local()


class CrashPointError(ValueError):
    """GATEWAY_CRASH_AT names no known crash point."""


def check() -> None:
    """Refuse to start with a misspelt crash point (a drill that never crashes would prove nothing)."""
    if ARMED is not None and ARMED not in POINTS:
        raise CrashPointError(f"{ENVIRONMENT_VARIABLE}={ARMED!r} is not a crash point (known: {sorted(POINTS)})")


def at(point: str) -> None:
    """Die here if this is the armed point."""
    if ARMED is not None and ARMED == point:
        _die(point)


def at_after_settling(point: str, settle_s: float = 1.0) -> None:
    """Die here if this is the armed point, after `settle_s`: QuickFIX counts a message as received only
    once our callback has returned, so a drill of "received but not committed" waits for that first (in
    production any batch slower than the callback's return is in the same state)."""
    if ARMED is not None and ARMED == point:
        time.sleep(settle_s)
        _die(point)


def _die(point: str) -> None:
    sys.stderr.write(f"crash point reached: {point}\n")
    sys.stderr.flush()
    os._exit(EXIT_CODE)


def applying_fills(active: bool) -> None:
    """The worker marks the stretch where a batch holding a fill runs in its transaction (this thread only)."""
    if ARMED == "mid_fill_apply":
        _applying_fill.active = active


def install(engine: Engine) -> None:
    """For `mid_fill_apply`: die at the commit of a transaction that applies a fill, after its statements
    ran and before the database made them durable (PostgreSQL rolls the open transaction back)."""
    if ARMED != "mid_fill_apply":
        return

    def before_commit(connection: Connection) -> None:
        if getattr(_applying_fill, "active", False):
            _die("mid_fill_apply")

    event.listen(engine, "commit", before_commit)
