"""REST order placement benchmark on PostgreSQL: throughput and latency from each request's intended send time.

Usage:
    python bench/rest_bench.py [--pg-url URL] [--seconds S] [--rate R] [--concurrency C] [--accounts A]

A fresh PostgreSQL database is created, migrated, loaded with instruments, ``A`` funded accounts and one API
key per account, and ``oms api`` is started on it as a separate process (as in production; rate limit off).
A venue process plays the exchange: it takes new orders from the outbox, as the FIX gateway's sender would,
and applies a full fill for each through the OMS service (``ApplyExecution``), so every order placed also
fills and books its ledger entries while the load runs.

* throughput: ``C`` closed-loop clients POST /v1/orders (each with an Idempotency-Key) for ``S`` seconds;
  the figure is accepted placements per second.
* latency: an open-loop schedule at ``R`` requests per second for ``S`` seconds; each latency is measured from
  the request's intended send time (so a stalled server cannot hide queueing: no coordinated omission).
* disk: during the open loop a thread times a small ``fdatasync`` every 20 ms on the file system of PostgreSQL's
  WAL, and reports flushes over 50 ms and the requests in flight during them (``DiskProbe``): with
  ``synchronous_commit=on`` a stalled disk stalls every commit, whatever the code does.
* CPU per placement, from /proc: the API processes; the venue's process; this process (the HTTP client); the
  PostgreSQL backends, split into the API's and the venue's (by ``application_name``).

Before measuring, ``--warmup`` seconds of placements give the tables a few thousand rows, and ``ANALYZE``
gives the planner statistics (as autovacuum would on a live database; ``--no-analyze`` skips it).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from oms.api.keys import Scope, create_api_key  # noqa: E402
from oms.db import outbox_signal  # noqa: E402
from oms.db.migrate import upgrade  # noqa: E402
from oms.domain.commands import ApplyExecution  # noqa: E402
from oms.domain.enums import ExecType, OrderStatus  # noqa: E402
from oms.domain.instruments import Instrument  # noqa: E402
from oms.service.accounts import create_account, deposit, upsert_instruments  # noqa: E402
from oms.service.executor import CommandExecutor  # noqa: E402
from oms.service.uow import Database  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
INSTRUMENTS = [Instrument(symbol="AAPL", currency="USD", tick_size=Decimal("0.01"), reference_price=Decimal("190.00"))]
API_APPLICATION, VENUE_APPLICATION = "oms-api", "bench-venue"  # PostgreSQL application_name: whose backend is whose
ORDER = b'{"symbol":"AAPL","side":"buy","type":"limit","qty":"1","limit_price":"190.00"}'


class Venue:
    """Fills every new order found in the outbox, in batches, through the OMS service (`ApplyExecution`).

    It runs in a process of its own, as a venue and its gateway would: in a thread of the bench process its
    fill batches held the GIL that the HTTP client needs to read responses, which added their time to the
    latencies measured.
    """

    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited connection pool
        self.stop = context.Event()
        self._filled = context.Value("q", 0)
        self._process = context.Process(target=_run_venue, args=(url, self.stop, self._filled), name="bench-venue",
                                        daemon=True)  # fmt: skip

    @property
    def filled(self) -> int:
        return int(self._filled.value)

    def start(self) -> None:
        self._process.start()

    def join(self, timeout: float) -> None:
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()

    def cpu_s(self) -> float:
        """CPU seconds the venue process used so far, from /proc."""
        return process_cpu_s(self._process.pid) if self._process.pid is not None else 0.0


def _run_venue(url: str, stop: Any, filled: Any) -> None:
    database = Database.from_url(url)
    executor = CommandExecutor(database)
    sequence = 0
    outbox = database.engine.raw_connection()  # the venue's own session, outside the OMS's units of work
    outbox.driver_connection.autocommit = True
    outbox.driver_connection.execute("LISTEN " + outbox_signal.CHANNEL)  # as the gateway's sender does
    try:
        while not stop.is_set():
            rows = sorted(outbox.driver_connection.execute(TAKE_NEW_ORDERS).fetchall())
            if not rows:  # wait for the API's next commit of orders (or 0.2 s, to notice the stop)
                for _ in outbox.driver_connection.notifies(timeout=0.2, stop_after=1):
                    pass
                continue
            commands = []
            for _, payload in rows:
                sequence += 1
                commands.append(
                    ApplyExecution(
                        venue_exec_id=f"BX{sequence}", cl_ord_id=payload["cl_ord_id"], venue_order_id=f"BV{sequence}",
                        exec_type=ExecType.TRADE, ord_status=OrderStatus.FILLED, last_qty=Decimal(payload["qty"]),
                        last_px=Decimal(payload["limit_price"]), cum_qty=Decimal(payload["qty"]),
                    )
                )  # fmt: skip
            executor.execute(commands)
            with filled.get_lock():
                filled.value += len(commands)
    finally:
        outbox.close()
        database.dispose()


# Take up to 64 new orders off the outbox, oldest first, in one statement (one round trip): the venue's
# bookkeeping, not the OMS's, so it need not cost what the OMS's own work costs (SQLAlchemy statements
# built per poll took a quarter of this thread's CPU).
TAKE_NEW_ORDERS = (
    "UPDATE outbox SET sent_at = now() WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND kind = 'new' "
    "ORDER BY id LIMIT 64 FOR UPDATE SKIP LOCKED) RETURNING id, payload"
)


def wait_until_filled(database: Database, timeout_s: float = 30.0) -> int:
    """Wait (up to ``timeout_s``) until the venue has filled every order placed; the orders still open."""
    deadline = time.monotonic() + timeout_s
    with database.engine.connect() as connection:
        while True:
            open_orders = int(connection.execute(text("SELECT COUNT(*) FROM orders WHERE status <> 'filled'")).scalar_one())
            if open_orders == 0 or time.monotonic() >= deadline:
                return open_orders
            connection.commit()
            time.sleep(0.1)


def analyze(database: Database) -> None:
    """Give the planner statistics, as autovacuum does on a live database within a minute or so.

    The tables start empty, and autovacuum would not analyze them during a 10 s run: every lookup then kept
    the sequential-scan plans chosen for empty tables (psycopg prepares repeated statements), so each
    statement's cost grew with the tables (``pg_stat_user_tables``: 2,000 sequential scans of ``orders``
    reading 3.3 million rows in one run). Waits for the warm-up's orders to be filled first.
    """
    deadline = time.monotonic() + 30
    with database.engine.connect() as connection:
        while time.monotonic() < deadline:
            if connection.execute(text("SELECT COUNT(*) FROM orders WHERE status <> 'filled'")).scalar_one() == 0:
                break
            connection.commit()
            time.sleep(0.1)
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


def process_cpu_s(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its children (the uvicorn workers), from /proc."""
    total = 0.0
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        children = []
    for each in [pid, *children]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def database_cpu_s(admin: Any, name: str) -> dict[str, float]:
    """CPU seconds used so far by the PostgreSQL backends serving database ``name`` (same machine), by the
    connections' ``application_name`` (the API's, the venue's)."""
    with admin.connect() as connection:
        rows = connection.execute(
            text("SELECT pid, application_name FROM pg_stat_activity WHERE datname = :n"), {"n": name}
        ).all()
    totals: dict[str, float] = {}
    for pid, application in rows:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        totals[application] = totals.get(application, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return totals


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Connection:
    """A keep-alive HTTP/1.1 connection speaking just enough HTTP for this API (Content-Length bodies).

    The load generator shares the 2 cores with the server: httpx spent ~2.8 ms of CPU per request here
    (4x the server's 0.67 ms for ``GET /v1/health``), so it measured itself. This costs a few microseconds.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, url: str) -> Connection:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer, host)

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> int:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def closed_loop(url: str, keys: list[str], seconds: float, concurrency: int) -> tuple[int, Counter[str], list[float]]:
    accepted = 0
    refused: Counter[str] = Counter()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal accepted
        key = keys[index % len(keys)]
        connection = await Connection.open(url)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status = await connection.request("POST", "/v1/orders", _headers(key), ORDER)
                latencies.append(time.perf_counter() - started)
                if status == 201:
                    accepted += 1
                else:
                    refused[str(status)] += 1
        finally:
            connection.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return accepted, refused, latencies


async def health_loop(url: str, seconds: float, concurrency: int) -> int:
    """Requests per second of a bare ``GET /v1/health``: the ceiling of the HTTP stack here."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        connection = await Connection.open(url)
        try:
            while time.perf_counter() < deadline:
                await connection.request("GET", "/v1/health")
                done += 1
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


KEEPALIVE_EXPIRY_S = 4.0


async def open_loop(
    url: str, keys: list[str], seconds: float, rate: float
) -> tuple[int, Counter[str], list[float], list[tuple[float, float]]]:
    """Sends at ``rate`` on schedule whatever the server does; a request waits for a free connection (up to
    256) and its latency counts from its intended send time, so queueing anywhere shows.

    Like an HTTP client pool (httpx's ``keepalive_expiry``), it does not reuse a connection idle for longer
    than ``KEEPALIVE_EXPIRY_S``, just under the time after which uvicorn closes an idle one (5 s), so a
    request is not sent on a connection the server is closing. A kept-alive connection the server closed
    anyway is replaced and the request sent again with the same Idempotency-Key; the latency still counts
    from the intended send time."""
    accepted = 0
    refused: Counter[str] = Counter()
    latencies: list[float] = []
    spans: list[tuple[float, float]] = []  # (intended send, answer) in time.perf_counter() seconds
    total = int(seconds * rate)
    idle: list[tuple[Connection, float]] = []  # with the time each went idle
    available = asyncio.Semaphore(256)

    def fresh_idle() -> Connection | None:
        while idle:
            connection, since = idle.pop()
            if time.perf_counter() - since < KEEPALIVE_EXPIRY_S:
                return connection
            connection.close()
        return None

    async def send(intended: float, key: str) -> None:
        nonlocal accepted
        headers = _headers(key)
        async with available:
            status, refused_reason = None, ""
            for attempt in range(2):
                connection = (fresh_idle() if attempt == 0 else None) or await Connection.open(url)
                try:
                    status = await connection.request("POST", "/v1/orders", headers, ORDER)
                except (OSError, asyncio.IncompleteReadError) as error:
                    connection.close()
                    refused_reason = type(error).__name__
                    continue
                idle.append((connection, time.perf_counter()))
                break
            if status is None:
                refused[refused_reason] += 1
                return
        answered = time.perf_counter()
        latencies.append(answered - intended)
        spans.append((intended, answered))
        if status == 201:
            accepted += 1
        else:
            refused[str(status)] += 1

    start = time.perf_counter() + 0.1
    tasks = []
    for i in range(total):
        intended = start + i / rate
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(intended, keys[i % len(keys)])))
    await asyncio.gather(*tasks)
    for connection, _ in idle:
        connection.close()
    return accepted, refused, latencies, spans


class DiskProbe:
    """Times a small durable write (4 KiB, ``fdatasync``) every 20 ms on the disk that holds PostgreSQL's WAL.

    A commit with ``synchronous_commit=on`` waits for the same kind of flush, so when the disk stalls every
    commit in flight stalls with it, whatever the code does. On this machine's virtual disk such flushes
    sometimes take 100-400 ms; the probe tells a run hit by one from a run that was not. It adds 50 small
    flushes per second next to PostgreSQL's few hundred.
    """

    PERIOD_S = 0.020
    STALL_S = 0.050

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.flushes: list[tuple[float, float]] = []  # (start, end) in time.perf_counter() seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk-probe", daemon=True)

    def __enter__(self) -> DiskProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with tempfile.NamedTemporaryFile(dir=self.directory, prefix="rest_bench_probe_") as handle:
            block = b"\0" * 4096
            while not self._stop.wait(self.PERIOD_S):
                os.pwrite(handle.fileno(), block, 0)
                start = time.perf_counter()
                os.fdatasync(handle.fileno())
                self.flushes.append((start, time.perf_counter()))

    def stalls(self) -> list[tuple[float, float]]:
        return [(start, end) for start, end in self.flushes if end - start > self.STALL_S]

    def report(self, spans: list[tuple[float, float]]) -> str:
        """The probe's figures, and how many requests were in flight during one of its stalls."""
        if not self.flushes:
            return "disk probe: no flush timed"
        stalls = self.stalls()
        durations = sorted(end - start for start, end in self.flushes)
        hit = {span for span in spans if any(span[0] < end and start < span[1] for start, end in stalls)}
        clear = sorted(answered - intended for intended, answered in spans if (intended, answered) not in hit)
        line = (f"disk probe ({self.directory}): {len(durations)} fdatasync, p50 {1000 * statistics.median(durations):.1f} ms, "
                f"max {1000 * durations[-1]:.1f} ms, {len(stalls)} over {1000 * self.STALL_S:.0f} ms")  # fmt: skip
        if stalls:
            line += (f"; {len(hit)} requests were in flight during those stalls; "
                     f"p99 of the other {len(clear)}: {1000 * percentile(clear, 0.99):.1f} ms")  # fmt: skip
        return line


def wal_directory(admin: Any) -> str:
    """A directory on the file system of PostgreSQL's WAL when the server is on this host: the temp directory
    if it is on the same one, else the directory holding the cluster's; the temp directory when unknown."""
    temp = tempfile.gettempdir()
    try:
        with admin.connect() as connection:
            data = connection.execute(text("SHOW data_directory")).scalar_one()
        wal = os.stat(os.path.join(data, "pg_wal"))
    except Exception:  # not a superuser, or the server is on another host
        return temp
    return temp if os.stat(temp).st_dev == wal.st_dev else os.path.dirname(data.rstrip("/"))


USE_IDEMPOTENCY_KEYS = True


def _reasons(refused: Counter[str]) -> str:
    """'0 refused', or how many were refused and why (HTTP status, or the connection error)."""
    if not refused:
        return "0 refused"
    return f"{sum(refused.values())} refused: " + ", ".join(f"{count} x {reason}" for reason, count in refused.most_common())


def _headers(key: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if USE_IDEMPOTENCY_KEYS:
        headers["Idempotency-Key"] = secrets.token_hex(12)
    return headers


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("oms api exited early")
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("oms api did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--workers", type=int, default=1, help="oms api --workers")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of closed-loop placements before measuring")
    parser.add_argument("--no-analyze", dest="analyze", action="store_false",
                        help="skip ANALYZE after the warm-up (plans then stay those of empty tables)")
    parser.add_argument("--no-idempotency-keys", action="store_true", help="send writes without Idempotency-Key")
    parser.add_argument("--disk-probe-dir", default=None,
                        help="where the disk probe times its flushes (default: the temp directory when it is on "
                             "the file system of PostgreSQL's WAL or the server is not local, else beside the cluster)")
    args = parser.parse_args()
    global USE_IDEMPOTENCY_KEYS
    USE_IDEMPOTENCY_KEYS = not args.no_idempotency_keys

    name = f"bench_rest_{secrets.token_hex(4)}"
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    probe_directory = args.disk_probe_dir or wal_directory(admin)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.pg_url.rsplit("/", 1)[0] + "/" + name
    database = Database.from_url(url + "?application_name=" + VENUE_APPLICATION)
    process: subprocess.Popen[bytes] | None = None
    venue = Venue(url + "?application_name=" + VENUE_APPLICATION)
    try:
        upgrade(database.engine)
        upsert_instruments(database, INSTRUMENTS)
        keys = []
        for index in range(args.accounts):
            account = f"B{index:04d}"
            create_account(database, account)
            deposit(database, account, Decimal("100000000"))
            keys.append(create_api_key(database, [account], [Scope.TRADE]))
        environment = os.environ | {"OMS_DATABASE_URL": url + "?application_name=" + API_APPLICATION, "OMS_LOG_LEVEL": "warning", "OMS_MAX_ORDERS_PER_SECOND": "0"}
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "oms"), "api", "--port", str(args.port), "--rate", "0", "--workers", str(args.workers)], env=environment, cwd=ROOT
        )
        base = f"http://127.0.0.1:{args.port}"
        _wait_for(base, process)
        venue.start()
        asyncio.run(closed_loop(base, keys, args.warmup, args.concurrency))  # warm up: a few thousand orders
        if args.analyze:
            analyze(database)
        health = asyncio.run(health_loop(base, 3.0, args.concurrency))
        print(f"bare GET /v1/health: {health / 3.0:.0f} req/s with {args.concurrency} clients (the HTTP stack's ceiling here)")
        cpu_before, bench_before, pg_before = process_cpu_s(process.pid), time.process_time(), database_cpu_s(admin, name)
        venue_before = venue.cpu_s()
        accepted, refused, closed = asyncio.run(closed_loop(base, keys, args.seconds, args.concurrency))
        cpu_used, bench_used = process_cpu_s(process.pid) - cpu_before, time.process_time() - bench_before
        venue_used = venue.cpu_s() - venue_before
        pg_after = database_cpu_s(admin, name)  # backends that lived through the run
        pg_used = {application: pg_after[application] - pg_before.get(application, 0.0) for application in pg_after}
        throughput = accepted / args.seconds
        print(f"throughput: {throughput:.0f} placements/s accepted ({_reasons(refused)}) with {args.concurrency} clients, "
              f"service time p50 {1000 * statistics.median(closed):.1f} ms p99 {1000 * percentile(closed, 0.99):.1f} ms")  # fmt: skip
        print(f"CPU per placement: API processes {1000 * cpu_used / max(1, accepted):.2f} ms, "
              f"venue fills (own process) {1000 * venue_used / max(1, accepted):.2f} ms, "
              f"HTTP client (this process) {1000 * bench_used / max(1, accepted):.2f} ms, "
              f"PostgreSQL backends {1000 * sum(pg_used.values()) / max(1, accepted):.2f} ms "
              f"(API's {1000 * pg_used.get(API_APPLICATION, 0.0) / max(1, accepted):.2f}, "
              f"venue's {1000 * pg_used.get(VENUE_APPLICATION, 0.0) / max(1, accepted):.2f}); wall {args.seconds:.0f} s x 2 cores = "
              f"{2000 * args.seconds / max(1, accepted):.2f} core-ms per placement available")
        wait_until_filled(database)  # the closed loop's last orders: measure latency from a steady state
        cpu_before, bench_before, venue_before = process_cpu_s(process.pid), time.process_time(), venue.cpu_s()
        pg_before, wall_before = database_cpu_s(admin, name), time.perf_counter()
        with DiskProbe(probe_directory) as probe:
            accepted, refused, opened, spans = asyncio.run(open_loop(base, keys, args.seconds, args.rate))
        wall = time.perf_counter() - wall_before
        pg_after = database_cpu_s(admin, name)
        pg_open = sum(pg_after[a] - pg_before.get(a, 0.0) for a in pg_after)
        print(f"latency at {args.rate:.0f} req/s (from intended send time): p50 {1000 * statistics.median(opened):.1f} ms "
              f"p90 {1000 * percentile(opened, 0.90):.1f} ms p99 {1000 * percentile(opened, 0.99):.1f} ms "
              f"max {1000 * max(opened):.1f} ms ({accepted} accepted, {_reasons(refused)})")  # fmt: skip
        print(f"CPU during that loop, % of one core: API {100 * (process_cpu_s(process.pid) - cpu_before) / wall:.0f}, "
              f"venue {100 * (venue.cpu_s() - venue_before) / wall:.0f}, HTTP client {100 * (time.process_time() - bench_before) / wall:.0f}, "
              f"PostgreSQL backends {100 * pg_open / wall:.0f} (of {100 * os.cpu_count():.0f})")  # fmt: skip
        print(probe.report(spans))
        open_orders = wait_until_filled(database)
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"venue filled {venue.filled} orders; orders not filled at the end: {open_orders}")
    finally:
        venue.stop.set()
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
        venue.join(timeout=10)
        database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
