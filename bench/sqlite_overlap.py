"""Can SQLite's writing run beside Python work in another thread of the same process?

Usage: python bench/sqlite_overlap.py [--batches 20] [--rounds 3] [--switch-interval S]

Why this exists: on SQLite the service benchmark spends about 40% of each order inside SQLite's C code
(the ``executemany`` calls and COMMIT of its batches) and the rest in the service's Python. The two run one
after the other. If a writer thread could commit batch N while the main thread computed batch N+1, an
order would cost about the larger of the two instead of their sum. Python's ``sqlite3`` releases the GIL
while SQLite steps a statement, so it might. This measures whether it does, on the project's own schema.

What runs, on a freshly migrated database in WAL mode with ``synchronous=FULL`` (the service's settings):

* **writer alone:** ``--batches`` transactions, each 500 ``orders`` rows and 3,500 ``postings`` rows by
  ``executemany`` (the rows one batch of the service bench writes to its two largest tables), then COMMIT;
* **Python alone:** a CPU-bound pure-Python loop (the service's own work is Python of this kind);
* **both at once:** the writer in a thread, the loop in the main thread, with fresh rows.

It prints each time and the overlap: ``(writer + python - both) / min(writer, python)``. 1.0 means the
shorter job hid completely behind the longer one; 0 means the two ran as if one after the other; below 0
means running them together cost more than running them in turn.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oms.db.engine import make_engine  # noqa: E402
from oms.db.migrate import upgrade  # noqa: E402

ORDERS_PER_BATCH = 500
POSTINGS_PER_ORDER = 7  # a placement's reservation and a fill's cash, shares and fee legs, as the service writes

_ORDER_COLUMNS = (
    "id", "account_id", "cl_ord_id", "source", "symbol", "side", "order_type", "time_in_force", "qty",
    "limit_price", "status", "cum_qty", "leaves_qty", "cum_notional", "cum_fees", "venue_cl_ord_id",
    "fingerprint", "created_at", "updated_at",
)  # fmt: skip
_INSERT_ORDER = (
    f"INSERT INTO orders ({', '.join(_ORDER_COLUMNS)}) VALUES ({', '.join('?' * len(_ORDER_COLUMNS))})"
)
_INSERT_POSTING = "INSERT INTO postings (entry_id, ledger_account, asset, amount) VALUES (?, ?, ?, ?)"

Batch = tuple[list[tuple[str, ...]], list[tuple[str, ...]]]


class RowMaker:
    """Rows shaped like the service's: time-ordered 32-hex-digit ids, 50 accounts, Decimal text amounts."""

    def __init__(self) -> None:
        self.next_order = 0

    def batch(self) -> Batch:
        orders: list[tuple[str, ...]] = []
        postings: list[tuple[str, ...]] = []
        now = "2026-11-24 13:00:00.000000"
        for _ in range(ORDERS_PER_BATCH):
            n = self.next_order
            self.next_order += 1
            order_id = f"{0x19A00000000 + n:012x}{os.urandom(10).hex()}"
            account = f"ACC{n % 50:02d}"
            orders.append((
                order_id, account, f"C{n}", "fix", "AAPL", "buy", "limit", "day", "100", "189.50",
                "pending_new", "0", "100", "0", "0", f"V{order_id}", order_id * 2, now, now,
            ))  # fmt: skip
            for leg in range(POSTINGS_PER_ORDER):
                postings.append((order_id, f"customer:{account}:leg{leg}", "USD", "-18950.00"))
        return orders, postings


def fresh_database(directory: str) -> sqlite3.Connection:
    path = os.path.join(directory, "overlap.db")
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "wal_autocheckpoint=0", "foreign_keys=OFF"):
        connection.execute(f"PRAGMA {pragma}")
    return connection


def write(connection: sqlite3.Connection, batches: list[Batch]) -> None:
    for orders, postings in batches:
        connection.execute("BEGIN")
        connection.executemany(_INSERT_ORDER, orders)
        connection.executemany(_INSERT_POSTING, postings)
        connection.execute("COMMIT")


def python_work(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * 3 % 7
    return total


def timed(job: Callable[[], object]) -> float:
    start = time.perf_counter()
    job()
    return time.perf_counter() - start


def one_round(directory: str, n_batches: int, iterations: int) -> tuple[float, float, float]:
    connection = fresh_database(directory)
    rows = RowMaker()
    try:
        alone_batches = [rows.batch() for _ in range(n_batches)]
        writer_alone = timed(lambda: write(connection, alone_batches))
        python_alone = timed(lambda: python_work(iterations))
        together_batches = [rows.batch() for _ in range(n_batches)]
        start = time.perf_counter()
        writer = threading.Thread(target=write, args=(connection, together_batches))
        writer.start()
        python_work(iterations)
        writer.join()
        both = time.perf_counter() - start
    finally:
        connection.close()
    return writer_alone, python_alone, both


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=0,
                        help="length of the Python loop (default: calibrated to take as long as the writer)")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval for the run (CPython's default is 0.005 s)")
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, switch interval "
          f"{sys.getswitchinterval()} s, {args.batches} batches of {ORDERS_PER_BATCH} orders")
    iterations = args.iterations
    overlaps: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sqlite_overlap_") as root:
        if not iterations:  # as long as the writer: the case where overlap would pay most
            with tempfile.TemporaryDirectory(dir=root) as probe:
                writer_s, python_s, _ = one_round(probe, args.batches, 1_000_000)
            iterations = int(1_000_000 * writer_s / python_s)
        for n in range(args.rounds):
            with tempfile.TemporaryDirectory(dir=root) as directory:
                writer_s, python_s, both_s = one_round(directory, args.batches, iterations)
            overlap = (writer_s + python_s - both_s) / min(writer_s, python_s)
            overlaps.append(overlap)
            print(f"round {n + 1}: writer alone {writer_s:.3f} s, Python alone {python_s:.3f} s, "
                  f"both at once {both_s:.3f} s (in turn would be {writer_s + python_s:.3f} s); overlap {overlap:+.2f}")
    print(f"median overlap {statistics.median(overlaps):+.2f} over {len(overlaps)} rounds "
          "(1 = fully hidden, 0 = as if in turn)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
