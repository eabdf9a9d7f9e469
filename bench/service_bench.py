"""Throughput benchmark of the OMS service layer: orders placed and fully filled, durably, per second.

Usage:
    python bench/service_bench.py --backend sqlite|postgresql|both --orders N --batch B --accounts A
        [--mode batch|group|both] [--threads K] [--committers C] [--processes P ...] [--pg-url URL]
        [--profile FILE]

For every backend a fresh database is created (PostgreSQL: ``CREATE DATABASE bench_<random>``, dropped at
the end; SQLite: a temporary file, WAL + ``synchronous=FULL`` as ``make_engine`` sets it), migrated with
``upgrade``, loaded with instruments and ``A`` funded accounts.

* ``batch`` mode: for each batch of ``B`` orders, ``executor.execute`` runs ``B`` PlaceOrder commands in one
  transaction (one durable commit), then ``B`` ApplyExecution full fills at the limit price (referencing
  ``result.venue_cl_ord_id``) in a second one. No result is looked at before ``execute`` returns, i.e. before
  its commit is durable.
* ``group`` mode: ``K`` threads each submit place, wait for the durable result, then submit the fill and wait,
  through one :class:`GroupCommitter` (group commit of single submissions; ``C`` committer threads on
  PostgreSQL).
* ``procs`` (``--processes P``): ``P`` gateway processes, each owning every ``P``-th account (DESIGN.md's
  scale-out), run the batch loop at the same time against the same database.

The figure is orders placed + filled per second (wall clock over the timed loop), with per-batch (batch
mode) or per-order (group mode) latency percentiles; batch mode also prints the client process's CPU time
per order, a figure less disturbed by other load on a shared machine, on PostgreSQL the CPU time of the server
backends serving the bench database (``server_cpu_us_per_order``, read from ``/proc``; background processes such
as the WAL writer are not included), and the 1-minute load average when the run started (``load1``). At the end ``verify_ledger`` must be clean and
every order must be filled. SQLite WAL checkpoints run from a background thread, off the order path.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import platform
import pstats
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog  # noqa: E402
from sqlalchemy import Engine, create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from oms.db.engine import make_engine  # noqa: E402
from oms.db.migrate import upgrade  # noqa: E402
from oms.db.models import Execution  # noqa: E402
from oms.db.models import Order as OrderRow  # noqa: E402
from oms.domain.commands import ApplyExecution, PlaceOrder  # noqa: E402
from oms.domain.enums import ExecType, OrderSource, OrderStatus, OrderType, Side, TimeInForce  # noqa: E402
from oms.domain.instruments import Instrument  # noqa: E402
from oms.ledger.verify import verify_ledger  # noqa: E402
from oms.service.accounts import create_account, deposit, upsert_instruments  # noqa: E402
from oms.service.executor import CommandExecutor, GroupCommitter  # noqa: E402
from oms.service.orders import Outcome, ServiceConfig  # noqa: E402
from oms.service.uow import Database  # noqa: E402

# Copied from tests/service/factories.py (the bench does not import tests).
INSTRUMENTS = [
    Instrument(symbol="AAPL", currency="USD", tick_size=Decimal("0.01"), reference_price=Decimal("190.00")),
    Instrument(symbol="MSFT", currency="USD", tick_size=Decimal("0.01"), reference_price=Decimal("410.00")),
    Instrument(
        symbol="BTCX", currency="USD", tick_size=Decimal("0.01"), fractional=True, qty_decimals=4,
        reference_price=Decimal("100.00"),
    ),
]  # fmt: skip
# (symbol, limit price == fill price, qty): limit prices inside the 10 % collar around the reference.
ORDER_TERMS = [
    ("AAPL", Decimal("190.00"), Decimal("10")),
    ("MSFT", Decimal("410.00"), Decimal("5")),
    ("BTCX", Decimal("100.00"), Decimal("1.5")),
]
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CONFIG = ServiceConfig()  # the default broker fee schedule: fills book a fee too


def buy(account: str, cl_ord_id: str, symbol: str, qty: Decimal, price: Decimal) -> PlaceOrder:
    return PlaceOrder(
        account=account, cl_ord_id=cl_ord_id, symbol=symbol, side=Side.BUY, order_type=OrderType.LIMIT,
        qty=qty, limit_price=price, tif=TimeInForce.DAY, source=OrderSource.REST,
    )  # fmt: skip


def full_fill(venue_cl_ord_id: str, exec_id: str, qty: Decimal, px: Decimal) -> ApplyExecution:
    """The venue's ExecutionReport for one fill of the whole order, as the FIX layer would translate it."""
    return ApplyExecution(
        venue_exec_id=exec_id,
        cl_ord_id=venue_cl_ord_id,  # type: ignore[arg-type]
        venue_order_id="V-" + venue_cl_ord_id[-12:],  # type: ignore[arg-type]
        exec_type=ExecType.TRADE,
        ord_status=OrderStatus.FILLED,
        last_qty=qty,
        last_px=px,
        cum_qty=qty,
        leaves_qty=Decimal(0),
        avg_px=px,
        transact_time=datetime.now(UTC),
    )


def order_stream(n: int, accounts: list[str], tag: str) -> list[PlaceOrder]:
    """Deterministic place commands, spread round-robin over accounts and instruments (built untimed)."""
    out = []
    for i in range(n):
        symbol, price, qty = ORDER_TERMS[i % len(ORDER_TERMS)]
        out.append(buy(accounts[i % len(accounts)], f"{tag}{i}", symbol, qty, price))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class BenchDb:
    backend: str
    url: str
    database: Database
    cleanup: Callable[[], None]
    facts: dict[str, str] = field(default_factory=dict)


def make_sqlite(tmp_root: str) -> BenchDb:
    directory = tempfile.mkdtemp(prefix="bench_svc_sqlite_", dir=tmp_root)
    path = os.path.join(directory, "oms.db")
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    database = Database(engine)
    with engine.connect() as connection:
        facts = {
            "journal_mode": connection.exec_driver_sql("PRAGMA journal_mode").scalar(),
            "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
                connection.exec_driver_sql("PRAGMA synchronous").scalar(), "?"
            ),
            "wal_autocheckpoint": str(connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()),
            "sqlite_version": connection.exec_driver_sql("select sqlite_version()").scalar(),
            "file": path,
        }
    assert facts["synchronous"] == "FULL", facts

    def cleanup() -> None:
        database.dispose()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(path + suffix)
            except FileNotFoundError:
                pass
        os.rmdir(directory)

    return BenchDb("sqlite", url, database, cleanup, facts)


def make_postgres(admin_url: str, pool_size: int) -> BenchDb:
    name = f"bench_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url, pool_size=pool_size)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            sync = connection.execute(text("SHOW synchronous_commit")).scalar()
            fsync = connection.execute(text("SHOW fsync")).scalar()
            wal_sync = connection.execute(text("SHOW wal_sync_method")).scalar()
            version = connection.execute(text("SHOW server_version")).scalar()
    except BaseException:
        engine.dispose()
        _drop_pg(admin, name)
        raise
    print(f"[postgresql] database {name}: synchronous_commit={sync} fsync={fsync} wal_sync_method={wal_sync}")
    assert sync == "on", f"synchronous_commit is {sync!r}, the benchmark needs it on"
    assert fsync == "on", f"fsync is {fsync!r}"
    database = Database(engine)

    def cleanup() -> None:
        database.dispose()
        _drop_pg(admin, name)
        admin.dispose()

    facts = {"synchronous_commit": sync, "fsync": fsync, "wal_sync_method": wal_sync, "server_version": version, "database": name}
    return BenchDb("postgresql", url, database, cleanup, facts)


def _drop_pg(admin, name: str) -> None:  # type: ignore[no-untyped-def]
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load(db: BenchDb, n_accounts: int, orders_per_account: int) -> list[str]:
    upsert_instruments(db.database, INSTRUMENTS)
    # Worst case per order: 10 x 190 x 1.0005 + fee; fund 4x that, with a floor.
    cash = max(Decimal("1000000"), Decimal(orders_per_account) * Decimal("2100") * 4)
    accounts = [f"BENCH{i:04d}" for i in range(n_accounts)]
    for account in accounts:
        create_account(db.database, account)
        deposit(db.database, account, cash)
    return accounts


def sqlite_checkpoint(engine: Engine) -> None:
    """``PRAGMA wal_checkpoint(PASSIVE)`` outside any transaction.

    ``oms.db.engine.checkpoint`` cannot be used: it goes through ``engine.connect()``, whose ``begin`` hook
    issues ``BEGIN IMMEDIATE`` first, and SQLite refuses a checkpoint inside a transaction ("database table
    is locked"). The raw pysqlite connection (``isolation_level=None``) runs it in autocommit.
    """
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        raw.close()


class Checkpointer:
    """SQLite only: fold the WAL back into the database from a background thread, off the order path."""

    def __init__(self, db: BenchDb, interval_s: float) -> None:
        self._db = db
        self._interval = interval_s
        self._stop = threading.Event()
        self.count = 0
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._loop, name="wal-checkpoint", daemon=True)
        if db.backend == "sqlite" and interval_s > 0:
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            started = time.perf_counter()
            sqlite_checkpoint(self._db.database.engine)
            self.seconds += time.perf_counter() - started
            self.count += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


# ---------------------------------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class RunResult:
    backend: str
    mode: str
    orders: int
    param: str
    seconds: float
    latencies_ms: list[float]
    latency_label: str
    checkpoints: int = 0
    checkpoint_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.orders / self.seconds

    def line(self) -> str:
        lat = self.latencies_ms
        return (
            f"[{self.backend}] {self.mode:5s} {self.param:>10s}: {self.orders} orders placed+filled in "
            f"{self.seconds:.2f}s = {self.rate:,.0f} orders/s; {self.latency_label} latency ms "
            f"p50={pct(lat, 50):.1f} p99={pct(lat, 99):.1f} max={max(lat):.1f}"
            + (f"; checkpoints={self.checkpoints} ({self.checkpoint_s:.2f}s, background)" if self.checkpoints else "")
            + "".join(f"; {k}={v:.1f}" for k, v in self.extra.items())
        )


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(db: BenchDb) -> float | None:
    """PostgreSQL: CPU time (user + system) used so far by the server processes serving this database.

    Read from ``/proc`` (the server runs on this machine), so the figure covers what the client's
    ``client_cpu_us_per_order`` leaves out; None on SQLite, or when ``/proc`` cannot be read.
    """
    if db.backend != "postgresql":
        return None
    with db.database.engine.connect() as connection:
        pids = connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars().all()
    total = 0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    except (OSError, IndexError, ValueError):
        return None
    return total / _CLOCK_TICKS


def run_batches(db: BenchDb, accounts: list[str], n: int, batch: int, tag: str, checkpoint_s: float) -> RunResult:
    executor = CommandExecutor(db.database, CONFIG)
    places = order_stream(n, accounts, tag)
    place_ms: list[float] = []
    fill_ms: list[float] = []
    pair_ms: list[float] = []
    checkpointer = Checkpointer(db, checkpoint_s)
    exec_seq = 0
    load1 = os.getloadavg()[0]
    server_started = server_cpu_seconds(db)
    started = time.perf_counter()
    cpu_started = time.process_time()  # this process's CPU (all threads): less sensitive to other load
    for start in range(0, n, batch):
        chunk = places[start : start + batch]
        t0 = time.perf_counter()
        results = executor.execute(chunk)  # one transaction, one durable commit
        t1 = time.perf_counter()
        fills = []
        for command, result in zip(chunk, results, strict=True):
            if result.outcome is not Outcome.ACCEPTED:
                raise AssertionError(f"place {command.cl_ord_id}: {result.outcome} {result.denial} {result.detail}")
            exec_seq += 1
            assert result.venue_cl_ord_id is not None
            fills.append(full_fill(result.venue_cl_ord_id, f"{tag}E{exec_seq}", command.qty, command.limit_price))  # type: ignore[arg-type]
        t2 = time.perf_counter()
        fill_results = executor.execute(fills)
        t3 = time.perf_counter()
        for result in fill_results:
            if result.outcome is not Outcome.APPLIED or result.order is None or result.order.status is not OrderStatus.FILLED:
                raise AssertionError(f"fill: {result.outcome} {result.detail} {result.order and result.order.status}")
        place_ms.append((t1 - t0) * 1000)
        fill_ms.append((t3 - t2) * 1000)
        pair_ms.append((t3 - t0) * 1000)
    elapsed = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    server_ended = server_cpu_seconds(db) if server_started is not None else None
    checkpointer.stop()
    extra = {"place_p50_ms": pct(place_ms, 50), "fill_p50_ms": pct(fill_ms, 50),
             "place_p99_ms": pct(place_ms, 99), "fill_p99_ms": pct(fill_ms, 99),
             "client_cpu_us_per_order": cpu_s / n * 1e6}  # fmt: skip
    if server_started is not None and server_ended is not None:
        extra["server_cpu_us_per_order"] = (server_ended - server_started) / n * 1e6
    extra["load1"] = load1
    return RunResult(
        db.backend, "batch", n, f"B={batch}", elapsed, pair_ms, "per-batch (place+fill)",
        checkpointer.count, checkpointer.seconds, extra,
    )  # fmt: skip


def run_group(
    db: BenchDb, accounts: list[str], n: int, threads: int, max_batch: int, tag: str, checkpoint_s: float,
    committers: int = 1,
) -> RunResult:
    executor = CommandExecutor(db.database, CONFIG)
    committer = GroupCommitter(executor, max_batch=max_batch, committers=committers)
    places = order_stream(n, accounts, tag)
    shares = [places[i::threads] for i in range(threads)]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)
    batch_sizes: list[int] = []
    original_run = committer._run  # count how many commands each shared commit carried (observation only)

    def counting_run(batch):  # type: ignore[no-untyped-def]
        batch_sizes.append(len(batch))
        original_run(batch)

    committer._run = counting_run  # type: ignore[method-assign]

    def worker(index: int) -> None:
        seq = 0
        try:
            barrier.wait()
            for command in shares[index]:
                t0 = time.perf_counter()
                placed = committer.execute(command, timeout=120)  # returns only after its commit is durable
                if placed.outcome is not Outcome.ACCEPTED or placed.venue_cl_ord_id is None:
                    raise AssertionError(f"place {command.cl_ord_id}: {placed.outcome} {placed.denial}")
                seq += 1
                filled = committer.execute(
                    full_fill(placed.venue_cl_ord_id, f"{tag}T{index}E{seq}", command.qty, command.limit_price),  # type: ignore[arg-type]
                    timeout=120,
                )
                if filled.outcome is not Outcome.APPLIED or filled.order is None or filled.order.status is not OrderStatus.FILLED:
                    raise AssertionError(f"fill: {filled.outcome} {filled.detail}")
                latencies[index].append((time.perf_counter() - t0) * 1000)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    workers = [threading.Thread(target=worker, args=(i,), name=f"client-{i}") for i in range(threads)]
    for thread in workers:
        thread.start()
    checkpointer = Checkpointer(db, checkpoint_s)
    barrier.wait()
    started = time.perf_counter()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    checkpointer.stop()
    committer.close()
    if errors:
        raise errors[0]
    flat = [value for chunk in latencies for value in chunk]
    return RunResult(
        db.backend, "group", n, f"K={threads},C={committers}", elapsed, flat, "per-order (place+fill)",
        checkpointer.count, checkpointer.seconds,
        {"commits": float(len(batch_sizes)), "mean_cmds_per_commit": statistics.fmean(batch_sizes) if batch_sizes else 0.0},
    )  # fmt: skip


def _partition_worker(url: str, accounts: list[str], n: int, batch: int, tag: str, start, results) -> None:  # type: ignore[no-untyped-def]
    """One gateway process owning a partition of the accounts: its own engine, the same batch loop."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    database = Database(make_engine(url, pool_size=2))
    db = BenchDb("worker", url, database, lambda: None)
    try:
        start.wait()
        result = run_batches(db, accounts, n, batch, tag, 0)
        results.put((result.seconds, result.latencies_ms, None))
    except BaseException as error:  # noqa: BLE001
        results.put((0.0, [], repr(error)))
    finally:
        database.dispose()


def run_processes(db: BenchDb, accounts: list[str], n: int, batch: int, processes: int, tag: str, checkpoint_s: float) -> RunResult:
    """``processes`` gateway processes, each owning every ``processes``-th account, run the batch loop at once.

    This is DESIGN.md's scale-out: several processes, disjoint account partitions, one database. The
    figure is all their orders over the wall-clock time from the common start to the last one done.
    """
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    results = context.Queue()
    share = n // processes
    workers = [
        context.Process(target=_partition_worker, args=(db.url, accounts[i::processes], share, batch, f"{tag}p{i}-", start, results))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    checkpointer = Checkpointer(db, checkpoint_s)
    start.wait(timeout=120)
    started = time.perf_counter()
    outcomes = [results.get(timeout=600) for _ in workers]
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
    checkpointer.stop()
    errors = [error for _, _, error in outcomes if error]
    if errors:
        raise AssertionError("worker failed: " + errors[0])
    latencies = [value for _, chunk, _ in outcomes for value in chunk]
    return RunResult(
        db.backend, "procs", share * processes, f"P={processes},B={batch}", elapsed, latencies, "per-batch (place+fill)",
        checkpointer.count, checkpointer.seconds,
    )  # fmt: skip


def verify(db: BenchDb, expected_orders: int) -> str:
    with db.database.engine.connect() as connection:
        violations = verify_ledger(connection)
        orders = OrderRow.__table__
        executions = Execution.__table__
        total = connection.execute(select(func.count()).select_from(orders)).scalar_one()
        filled = connection.execute(select(func.count()).select_from(orders).where(orders.c.status == "filled")).scalar_one()
        fills = connection.execute(select(func.count()).select_from(executions)).scalar_one()
    assert not violations, "ledger violations:\n" + "\n".join(map(str, violations[:20]))
    assert total == expected_orders, f"{total} orders in the database, expected {expected_orders}"
    assert filled == expected_orders, f"{filled} orders filled, expected {expected_orders}"
    assert fills == expected_orders, f"{fills} executions, expected {expected_orders}"
    return f"verify_ledger clean; orders={total} filled={filled} executions={fills}"


def bench_backend(backend: str, args: argparse.Namespace) -> list[RunResult]:
    tmp_root = tempfile.mkdtemp(prefix="bench_svc_", dir="/tmp")
    modes = ["batch", "group"] if args.mode == "both" else [args.mode]
    if args.processes:
        modes.append("procs")
    runs = (len(args.batch) * ("batch" in modes) + len(args.threads) * ("group" in modes)
            + len(args.processes or []) * ("procs" in modes))  # fmt: skip
    if backend == "sqlite":
        db = make_sqlite(tmp_root)
    else:
        db = make_postgres(args.pg_url, pool_size=4)
    print(f"[{backend}] " + ", ".join(f"{k}={v}" for k, v in db.facts.items()))
    results: list[RunResult] = []
    try:
        accounts = load(db, args.accounts, max(1, args.orders * runs // args.accounts + 1))
        # Warm-up (caches, prepared connections), not timed; its orders count toward the final check.
        warm = min(args.orders, 2 * max(args.batch))
        run_batches(db, accounts, warm, max(args.batch), "W", 0)
        total = warm
        profiler = cProfile.Profile() if args.profile else None
        for mode in modes:
            params = {"batch": args.batch, "group": args.threads, "procs": args.processes or []}[mode]
            for param in params:
                tag = f"{mode[0].upper()}{param}-"
                if profiler:
                    profiler.enable()
                if mode == "batch":
                    result = run_batches(db, accounts, args.orders, param, tag, args.checkpoint_interval)
                elif mode == "group":
                    committers = args.committers if db.backend == "postgresql" else 1
                    result = run_group(db, accounts, args.orders, param, args.max_batch, tag, args.checkpoint_interval, committers)
                else:
                    result = run_processes(db, accounts, args.orders, max(args.batch), param, tag, args.checkpoint_interval)
                if profiler:
                    profiler.disable()
                total += result.orders
                print(result.line(), flush=True)
                results.append(result)
        if db.backend == "sqlite":
            sqlite_checkpoint(db.database.engine)
        print(f"[{backend}] " + verify(db, total), flush=True)
        if profiler:
            path = f"{args.profile}.{backend}.prof"
            profiler.dump_stats(path)
            print(f"[{backend}] profile written to {path}")
            stats = pstats.Stats(profiler).sort_stats("cumulative")
            stats.print_stats(40)
            stats.sort_stats("tottime").print_stats(30)
    finally:
        db.cleanup()
        try:
            os.rmdir(tmp_root)
        except OSError:
            pass
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--orders", type=int, default=20000, help="orders per run (each placed and fully filled)")
    parser.add_argument("--batch", type=int, nargs="+", default=[500], help="batch size(s) B for batch mode")
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--mode", choices=("batch", "group", "both"), default="both")
    parser.add_argument("--threads", type=int, nargs="+", default=[64], help="client threads K for group mode")
    parser.add_argument("--processes", type=int, nargs="*", help="also run P gateway processes on disjoint account partitions (batch loop, largest B)")
    parser.add_argument("--committers", type=int, default=1, help="GroupCommitter committer threads on PostgreSQL (SQLite: always 1)")
    parser.add_argument("--max-batch", type=int, default=256, help="GroupCommitter max_batch")
    parser.add_argument("--checkpoint-interval", type=float, default=1.0, help="SQLite background checkpoint period (s); 0 = none")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--profile", metavar="PREFIX", help="cProfile the timed runs; writes PREFIX.<backend>.prof")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up only

    print(f"machine: nproc={os.cpu_count()} python={platform.python_version()} {platform.platform()}")
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    all_results = []
    for backend in backends:
        all_results.extend(bench_backend(backend, args))
    print("\nsummary:")
    for result in all_results:
        print("  " + result.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
