"""Gateway benchmark: the full FIX path (client -> gateway -> simulated venue) against a bare QuickFIX relay.

One command runs everything (10-20 minutes with the defaults, most of it draining backlogs) and leaves no process, port or database:

    .venv/bin/pip install -e '.[bench]'          # once: matplotlib for the histogram
    .venv/bin/python bench/gateway_bench.py      # relay, SQLite, PostgreSQL; 60 s at 500 orders/s each

Paths, each in its own processes (own GIL), all over loopback on free ports, FIX 4.4 with data dictionary
validation on every hop:

* relay      client -> bench/fix_relay.py relay -> echo venue (New + Trade per order). The ceiling.
* sqlite     client -> `Gateway` on a fresh migrated SQLite file (WAL, synchronous=FULL) -> `exchange.venue.Venue`
* postgresql client -> `Gateway` on a fresh PostgreSQL database (synchronous_commit=on, checked) -> venue
* sqlite+echo, postgresql+echo: the same gateway in front of the relay's echoing venue instead of the
  simulated exchange, so the venue is identical to the relay's and the difference is the gateway + OMS
  alone (the simulated exchange fsyncs its journal once per command, which the echo venue does not).

The ratio "vs relay" in the summary is each path's pipelined orders/s over the relay's, from the same run.

Orders are buy limit orders of 1 share, 8% through the reference price, rotating over the venue's seven
symbols, so each crosses the market maker's ask at once (the market maker re-quotes 1,000 shares per side
every --mm-interval-ms, far more than the runs take). The bench account is funded with 1e9 USD and its
per-second order limit raised; every other pre-trade check runs as in production.

Per path, after a warm-up:
1. throughput: --orders orders pipelined with at most --window outstanding; orders/s = orders / (first send ->
   last fill ExecutionReport at the client);
2. latency: a fixed-rate schedule at --rate orders/s for --duration seconds; each order's latency runs from its
   *intended* send time (so a stalled sender or a queue is not hidden) to its fill ExecutionReport at the client.
After the full-path runs the database is checked: every order filled, one execution each, ledger verifies.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import quickfix as fix  # noqa: E402

from fix.quickfix_io import QuietApplication  # noqa: E402
from fix_relay import DICTIONARY, redirect_output, run_echo_venue, run_relay  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ACCOUNT = "BENCH1"
CASH = Decimal("1000000000")
THROUGH_REFERENCE = Decimal("1.08")  # buy limit price / reference price: crosses the ask, inside the 10% collar
SPAWN = multiprocessing.get_context("spawn")
PATHS = ("relay", "sqlite", "postgresql", "sqlite+echo", "postgresql+echo")
DRAIN_STALL_S = 30.0  # after the last send, wait for outstanding fills while they keep coming


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------------------------------


def symbols_and_prices() -> list[tuple[str, str]]:
    from exchange.instruments import load_instruments

    return [(i.symbol, str((i.reference_price * THROUGH_REFERENCE).quantize(i.tick_size)))
            for i in load_instruments().values()]


class BenchClient(QuietApplication):
    """A FIX 4.4 initiator (BENCH -> OMS) that records, per order of the current phase, when its final
    ExecutionReport (filled or rejected) arrived; nothing else is kept."""

    def __init__(self, port: int, work_dir: Path) -> None:
        super().__init__()
        self.session_id = fix.SessionID("FIX.4.4", "BENCH", "OMS")
        self._orders = symbols_and_prices()
        self._lock = threading.Lock()
        self.arm("none", 0, None)
        text = "\n".join([
            "[DEFAULT]", "ConnectionType=initiator", "ReconnectInterval=1", "HeartBtInt=30", "SocketNodelay=Y",
            "StartTime=00:00:00", "EndTime=00:00:00", f"FileStorePath={work_dir / 'store'}",
            "UseDataDictionary=Y", f"DataDictionary={DICTIONARY}",
            "[SESSION]", "BeginString=FIX.4.4", "SenderCompID=BENCH", "TargetCompID=OMS",
            "SocketConnectHost=127.0.0.1", f"SocketConnectPort={port}", "",
        ])
        self._settings = fix.SessionSettings()
        self._settings.setFromString(text)
        self._store = fix.FileStoreFactory(self._settings)
        self._initiator: fix.ThreadedSocketInitiator | None = fix.ThreadedSocketInitiator(self, self._store, self._settings)

    def start(self, timeout_s: float = 30.0) -> BenchClient:
        assert self._initiator is not None
        self._initiator.start()
        if not self.logged_on.wait(timeout_s):
            raise RuntimeError("the bench client never logged on")
        return self

    def stop(self) -> None:
        if self._initiator is not None:
            self._initiator.stop(True)
            self._initiator = None

    def arm(self, phase: str, count: int, window: int | None) -> None:
        """Start a phase: `count` orders named `<phase>-<n>`, at most `window` outstanding (None: no limit)."""
        with self._lock:
            self.phase = phase
            self.expected = count
            self.sent_ns = [0] * count
            self.done_ns = [0] * count
            self.finished = 0
            self.rejects: list[str] = []
            self.done = threading.Event()
            self.window = threading.Semaphore(window) if window else None
            if count == 0:
                self.done.set()

    def send_order(self, number: int) -> None:
        symbol, price = self._orders[number % len(self._orders)]
        message = fix.Message()
        message.getHeader().setField(35, "D")
        for tag, value in ((11, f"{self.phase}-{number}"), (1, ACCOUNT), (21, "1"), (55, symbol), (54, "1"),
                           (60, _utc_timestamp()), (38, "1"), (40, "2"), (44, price), (59, "0")):
            message.setField(tag, value)
        if not fix.Session.sendToTarget(message, self.session_id):
            raise RuntimeError("send failed: session not logged on")

    # QuickFIX callbacks
    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        now = time.perf_counter_ns()
        try:
            if message.getHeader().getField(35) != "8":
                return
            status = message.getField(39)
            if status not in ("2", "8"):
                return
            prefix, _, number = message.getField(11).rpartition("-")
            text = message.getField(58) if status == "8" and message.isSetField(58) else ""
        except Exception:  # never let the bench kill QuickFIX's thread
            return
        with self._lock:
            if prefix != self.phase:
                return
            index = int(number)
            if self.done_ns[index]:
                return
            self.done_ns[index] = now
            if status == "8":
                self.rejects.append(text)
            self.finished += 1
            if self.finished == self.expected:
                self.done.set()
        if self.window is not None:
            self.window.release()


def _utc_timestamp() -> str:
    now = time.time()
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}"


# ---------------------------------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Throughput:
    orders: int
    window: int
    seconds: float
    rejects: int
    missing: int

    @property
    def rate(self) -> float:
        return self.orders / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Latency:
    rate: int
    seconds: float
    sent: int
    latencies_us: list[float] = field(default_factory=list)  # sorted
    rejects: int = 0
    missing: int = 0
    send_lag_max_us: float = 0.0  # how far the sender itself fell behind its schedule (part of the latency)

    def pct(self, fraction: float) -> float:
        values = self.latencies_us
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(round(fraction * (len(values) - 1))))]


def drain(client: BenchClient) -> None:
    """Wait for the phase's outstanding orders while fills keep arriving (a backlog drains; a loss ends it)."""
    last_count, last_progress = -1, time.monotonic()
    while not client.done.wait(0.5):
        if client.finished != last_count:
            last_count, last_progress = client.finished, time.monotonic()
        elif time.monotonic() - last_progress > DRAIN_STALL_S:
            return


def pipelined(client: BenchClient, phase: str, orders: int, window: int) -> Throughput:
    client.arm(phase, orders, window)
    started = time.perf_counter_ns()
    for number in range(orders):
        assert client.window is not None
        client.window.acquire()
        client.sent_ns[number] = time.perf_counter_ns()
        client.send_order(number)
    drain(client)
    last = max(client.done_ns) if orders else started
    missing = sum(1 for value in client.done_ns if not value)
    return Throughput(orders, window, (last - started) / 1e9, len(client.rejects), missing)


def fixed_rate(client: BenchClient, phase: str, rate: int, seconds: float) -> Latency:
    count = int(rate * seconds)
    client.arm(phase, count, None)
    period_ns = 1e9 / rate
    start = time.perf_counter_ns() + 50_000_000
    lag_max = 0
    for number in range(count):
        intended = start + int(number * period_ns)
        delay = intended - time.perf_counter_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
        else:
            lag_max = max(lag_max, -delay)
        client.sent_ns[number] = intended
        client.send_order(number)
    drain(client)
    latencies = sorted((done - sent) / 1000 for sent, done in zip(client.sent_ns, client.done_ns, strict=True) if done)
    missing = sum(1 for value in client.done_ns if not value)
    return Latency(rate, seconds, count, latencies, len(client.rejects), missing, lag_max / 1000)


# ---------------------------------------------------------------------------------------------------------------------
# The paths under test
# ---------------------------------------------------------------------------------------------------------------------


class Processes:
    """Child processes started with a ready and a stop event; stop() ends every one (kill as a last resort)."""

    def __init__(self) -> None:
        self._children: list[tuple[Any, Event]] = []

    def start(self, target: Any, *args: object, timeout_s: float = 60.0) -> None:
        ready, stop = SPAWN.Event(), SPAWN.Event()
        process = SPAWN.Process(target=target, args=(*args, ready, stop), daemon=True)
        process.start()
        self._children.append((process, stop))
        if not ready.wait(timeout_s):
            raise RuntimeError(f"{target.__name__} did not become ready within {timeout_s}s (see its .out log)")

    def pids(self) -> list[int]:
        return [process.pid for process, _ in self._children]

    def stop(self) -> None:
        for process, stop in reversed(self._children):
            stop.set()
            process.join(20)
            if process.is_alive():
                process.terminate()
                process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
        self._children.clear()


def run_venue(config_path: str, log_path: str, ready: Event, stop: Event) -> None:
    """Child process: the simulated exchange, with the market maker quoting on its timer."""
    redirect_output(log_path)
    from exchange.config import load_venue_config
    from exchange.venue import Venue

    venue = Venue(load_venue_config(config_path))
    venue.start()
    try:
        assert venue.service is not None
        venue.service.step_market_maker()  # quotes on every symbol before the first order
        ready.set()
        stop.wait()
    finally:
        venue.stop()


def run_gateway(config_path: str, url: str, log_path: str, ready: Event, stop: Event) -> None:
    """Child process: the gateway as `oms gateway` runs it (JSON logs to its log file)."""
    redirect_output(log_path)
    from oms.gateway.config import load_gateway_settings
    from oms.gateway.gateway import Gateway
    from oms.logging import configure_logging
    from oms.service.uow import Database

    configure_logging("info", "json")
    database = Database.from_url(url)
    gateway = Gateway(load_gateway_settings(config_path), database).start()
    try:
        if gateway.wait_venue(30):
            ready.set()
            stop.wait()
    finally:
        gateway.stop(True)
        database.dispose()


def venue_config(directory: Path, port: int, mm_interval_ms: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "sessions.cfg"
    path.write_text("\n".join([
        "[DEFAULT]", "SocketNodelay=Y", "",
        "[EXCHANGE]", "JournalDir=journal", "ControlPort=-1", "MarketMakerSeed=7",
        f"MarketMakerIntervalMs={mm_interval_ms}", "",
        "[SESSION]", "Component=exchange", "BeginString=FIX.4.4", "SenderCompID=EXCH", "TargetCompID=OMS",
        "ConnectionType=acceptor", f"SocketAcceptPort={port}", "StartTime=00:00:00", "EndTime=00:00:00",
        "HeartBtInt=30", "UseDataDictionary=Y", f"DataDictionary={DICTIONARY}", "FileStorePath=store",
        "FileLogPath=log", "",
    ]), encoding="utf-8")
    return path


def gateway_config(directory: Path, venue_port: int, client_port: int, metrics_port: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "sessions.cfg"
    path.write_text("\n".join([
        "[DEFAULT]", "HeartBtInt=30", "SocketNodelay=Y", "",
        "[GATEWAY]", f"MetricsPort={metrics_port}", "",
        "[SESSION]", "Component=gateway", "BeginString=FIX.4.4", "SenderCompID=OMS", "TargetCompID=BENCH",
        "ConnectionType=acceptor", f"SocketAcceptPort={client_port}", "UseDataDictionary=Y",
        f"DataDictionary={DICTIONARY}", "FileStorePath=store", f"Accounts={ACCOUNT}", "",
        "[SESSION]", "Component=gateway", "BeginString=FIX.4.4", "SenderCompID=OMS", "TargetCompID=EXCH",
        "ConnectionType=initiator", "SocketConnectHost=127.0.0.1", f"SocketConnectPort={venue_port}",
        "ReconnectInterval=1", "UseDataDictionary=Y", f"DataDictionary={DICTIONARY}",
        "FileStorePath=venue-store", "FileLogPath=venue-log", "",
    ]), encoding="utf-8")
    return path


@dataclass
class Store:
    """A fresh, migrated, seeded OMS database and how to remove it."""

    backend: str
    url: str
    facts: dict[str, str]
    drop: Any


def make_store(backend: str, work: Path, pg_admin_url: str) -> Store:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from oms.db.engine import make_engine
    from oms.db.migrate import upgrade

    if backend == "sqlite":
        url = f"sqlite:///{work / 'oms.db'}"
        engine = make_engine(url)
        upgrade(engine)
        with engine.connect() as connection:
            mode = str(connection.exec_driver_sql("PRAGMA journal_mode").scalar())
            sync = int(connection.exec_driver_sql("PRAGMA synchronous").scalar() or 0)
        engine.dispose()
        if sync < 2:
            raise RuntimeError(f"SQLite synchronous={sync}: the benchmark needs FULL (2) or EXTRA")
        facts = {"journal_mode": mode, "synchronous": {2: "FULL", 3: "EXTRA"}[sync]}
        store = Store(backend, url, facts, lambda: None)
    else:
        name = f"gw_bench_{secrets.token_hex(5)}"
        admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()

        url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
        try:
            engine = make_engine(url)
            upgrade(engine)
            with engine.connect() as connection:
                facts = {key: str(connection.execute(text(f"SHOW {key}")).scalar())
                         for key in ("synchronous_commit", "fsync", "wal_sync_method", "server_version")}
            engine.dispose()
            if facts["synchronous_commit"] != "on" or facts["fsync"] != "on":
                raise RuntimeError(f"PostgreSQL must run with synchronous_commit=on and fsync=on: {facts}")
        except BaseException:
            drop()
            raise
        store = Store(backend, url, facts, drop)
    seed(store.url)
    return store


def seed(url: str) -> None:
    from exchange.instruments import load_instruments
    from oms.domain.instruments import Instrument
    from oms.service.accounts import AccountLimitsConfig, create_account, deposit, upsert_instruments
    from oms.service.uow import Database

    database = Database.from_url(url)
    try:
        upsert_instruments(database, [
            Instrument(symbol=i.symbol, currency=i.currency, tick_size=i.tick_size, lot_size=i.lot_size,
                       reference_price=i.reference_price)
            for i in load_instruments().values()
        ])
        create_account(database, ACCOUNT, limits=AccountLimitsConfig(max_orders_per_second=1_000_000))
        deposit(database, ACCOUNT, CASH, reference="gw-bench-funding")
    finally:
        database.dispose()


def verify_store(url: str, client_fills: set[str]) -> str:
    """Every order the client saw filled is filled in the database, every filled order has exactly one fill
    execution, and the ledger verifies. (Orders still in flight when a stalled run was cut short may be
    filled in the database without the client having seen it: counted, not an error.)"""
    from sqlalchemy import func, select

    from oms.db.models import Execution
    from oms.db.models import Order as OrderRow
    from oms.ledger.verify import verify_ledger
    from oms.service.uow import Database

    database = Database.from_url(url)
    try:
        with database.engine.connect() as connection:
            orders = OrderRow.__table__
            total = connection.execute(select(func.count()).select_from(orders)).scalar_one()
            filled = connection.execute(
                select(func.count()).select_from(orders).where(orders.c.status == "filled")).scalar_one()
            fills = Execution.__table__
            executions = connection.execute(  # the New acknowledgement is stored too; count the fills
                select(func.count()).select_from(fills).where(fills.c.last_qty > Decimal(0))).scalar_one()
            violations = verify_ledger(connection)
            filled_ids = {row[0] for row in connection.execute(
                select(orders.c.cl_ord_id).where((orders.c.account_id == ACCOUNT) & (orders.c.status == "filled")))}
    finally:
        database.dispose()
    unbooked = client_fills - filled_ids
    ok = not violations and not unbooked and filled == executions
    verdict = "OK" if ok else "FAILED"
    return (f"{verdict}: orders={total} filled={filled} fill executions={executions}; client saw {len(client_fills)} "
            f"fills, {len(unbooked)} of them not filled in the database; ledger violations={len(violations)}")


# ---------------------------------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class PathResult:
    name: str
    throughput: Throughput
    latency: Latency
    facts: dict[str, str]
    verified: str = ""
    pids: list[int] = field(default_factory=list)
    client_fills: set[str] = field(default_factory=set)


def batch_metrics(metrics_port: int | None) -> dict[str, float]:
    """The gateway worker's committed batches so far (Prometheus histogram sums and counts)."""
    if metrics_port is None:
        return {}
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    wanted = ("oms_gateway_batch_size_sum", "oms_gateway_batch_size_count", "oms_gateway_batch_seconds_sum")
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith(wanted)}


def batch_line(before: dict[str, float], after: dict[str, float]) -> str:
    delta = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
    batches = delta.get("oms_gateway_batch_size_count", 0.0)
    if not batches:
        return ""
    return (f"{batches:.0f} worker batches, mean {delta['oms_gateway_batch_size_sum'] / batches:.1f} commands and "
            f"{1000 * delta['oms_gateway_batch_seconds_sum'] / batches:.2f} ms each")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (from /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_line(pids: list[int], before: list[float], orders: int) -> str:
    """CPU per order of each process of the path (the bench's own process, with the client, first)."""
    used = [cpu_seconds(pid) - start for pid, start in zip(pids, before, strict=True)]
    parts = ", ".join(f"{1000 * seconds / orders:.2f}" for seconds in used)
    return f"core-ms per order (bench, then path processes): {parts}"


def measure(name: str, client_port: int, work: Path, args: argparse.Namespace, facts: dict[str, str],
            pids: list[int], metrics_port: int | None = None) -> PathResult:
    client = BenchClient(client_port, work / "client").start()
    fills: set[str] = set()

    def collect() -> None:
        if not client.rejects:  # a phase with rejects reports them; only fills are collected here
            fills.update(f"{client.phase}-{n}" for n, done in enumerate(client.done_ns) if done)
        else:
            print(f"[{name}] {len(client.rejects)} rejects in {client.phase}: {client.rejects[:3]}", flush=True)

    try:
        warm = pipelined(client, f"{name}W", args.warmup, min(args.window, 50))
        if warm.missing or warm.rejects:
            raise RuntimeError(f"{name}: warm-up lost {warm.missing} orders, {warm.rejects} rejected: {client.rejects[:3]}")
        collect()
        print(f"[{name}] warm-up {args.warmup} orders ok; pids {pids}", flush=True)
        before = batch_metrics(metrics_port)
        everyone = [os.getpid(), *pids]
        cpu_before = [cpu_seconds(pid) for pid in everyone]
        throughput = pipelined(client, f"{name}T", args.orders, args.window)
        cpu = cpu_line(everyone, cpu_before, throughput.orders)
        collect()
        batches = batch_line(before, batch_metrics(metrics_port))
        print(f"[{name}] throughput {throughput.rate:,.0f} orders/s ({throughput.orders} orders in "
              f"{throughput.seconds:.2f}s, window {throughput.window}; rejects {throughput.rejects}, "
              f"missing {throughput.missing}) {batches}; {cpu}", flush=True)
        before = batch_metrics(metrics_port)
        latency = fixed_rate(client, f"{name}L", args.rate, args.duration)
        collect()
        batches = batch_line(before, batch_metrics(metrics_port))
        print(f"[{name}] latency at {latency.rate}/s for {latency.seconds:.0f}s: p50 {latency.pct(.5) / 1000:.2f} ms, "
              f"p99 {latency.pct(.99) / 1000:.2f} ms, p99.9 {latency.pct(.999) / 1000:.2f} ms, "
              f"max {latency.pct(1) / 1000:.2f} ms (rejects {latency.rejects}, missing {latency.missing}, "
              f"sender lag max {latency.send_lag_max_us / 1000:.2f} ms) {batches}", flush=True)
        if client.rejects:
            print(f"[{name}] reject texts: {client.rejects[:3]}", flush=True)
    finally:
        client.stop()
    return PathResult(name, throughput, latency, facts, pids=pids, client_fills=fills)


def run_relay_path(work: Path, args: argparse.Namespace) -> PathResult:
    work.mkdir(parents=True)
    processes = Processes()
    try:
        venue_port, client_port = free_port(), free_port()
        processes.start(run_echo_venue, venue_port, str(work), "RELAY")
        processes.start(run_relay, client_port, venue_port, str(work))
        return measure("relay", client_port, work, args, {}, processes.pids())
    finally:
        processes.stop()


def run_full_path(name: str, work: Path, args: argparse.Namespace) -> PathResult:
    """`sqlite` / `postgresql`: the gateway in front of the simulated exchange; `+echo`: in front of the relay's
    echoing venue instead (the OMS's own cost against the same venue as the relay's)."""
    backend, _, venue_kind = name.partition("+")
    work.mkdir(parents=True)
    store = make_store(backend, work, args.pg_url)
    print(f"[{name}] database {store.url}: {store.facts}", flush=True)
    processes = Processes()
    try:
        venue_port, client_port = free_port(), free_port()
        if venue_kind == "echo":
            processes.start(run_echo_venue, venue_port, str(work), "OMS")
        else:
            processes.start(run_venue, str(venue_config(work / "venue", venue_port, args.mm_interval_ms)),
                            str(work / "venue.out"))
        metrics_port = free_port()
        processes.start(run_gateway, str(gateway_config(work / "gateway", venue_port, client_port, metrics_port)),
                        store.url, str(work / "gateway.out"))
        result = measure(name, client_port, work, args, store.facts, processes.pids(), metrics_port)
        if args.hold_s:
            print(f"[{name}] holding {args.hold_s}s for profiling", flush=True)
            time.sleep(args.hold_s)
        processes.stop()
        result.verified = verify_store(store.url, result.client_fills)
        print(f"[{name}] durability check: {result.verified}", flush=True)
        return result
    finally:
        processes.stop()
        store.drop()


def summary(results: list[PathResult], args: argparse.Namespace) -> str:
    relay = next((r for r in results if r.name == "relay"), None)
    targets = {"sqlite": 0.70, "postgresql": 0.50, "sqlite+echo": 0.70, "postgresql+echo": 0.50}
    lines = [f"| path | orders/s (pipelined, window {args.window}) | vs relay | p50 ms | p99 ms | p99.9 ms | max ms |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        ratio = ""
        if relay is not None and result is not relay and relay.throughput.rate:
            value = result.throughput.rate / relay.throughput.rate
            target = targets.get(result.name)
            ratio = f"{value:.0%}" + (f" (target ≥{target:.0%})" if target else "")
        latency = result.latency
        lines.append(f"| {result.name} | {result.throughput.rate:,.0f} | {ratio} | {latency.pct(.5) / 1000:.2f} | "
                     f"{latency.pct(.99) / 1000:.2f} | {latency.pct(.999) / 1000:.2f} | {latency.pct(1) / 1000:.2f} |")
    lines.append(f"\nLatency: {args.rate} orders/s on a fixed schedule for {args.duration:.0f} s, from each order's "
                 "intended send time to its fill ExecutionReport at the client. Target p99 ≤ 10 ms.")
    return "\n".join(lines)


def histogram(results: list[PathResult], path: Path, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    values = [v for r in results for v in r.latency.latencies_us if v > 0]
    if not values:
        return
    bins = np.logspace(np.log10(max(min(values) / 1000, 0.01)), np.log10(max(values) / 1000 * 1.05), 120)
    figure, axis = plt.subplots(figsize=(10, 5.5))
    for result in results:
        data = np.array(result.latency.latencies_us) / 1000
        label = (f"{result.name}: p50 {result.latency.pct(.5) / 1000:.2f}, p99 {result.latency.pct(.99) / 1000:.2f}, "
                 f"p99.9 {result.latency.pct(.999) / 1000:.2f}, max {result.latency.pct(1) / 1000:.1f} ms")
        axis.hist(data, bins=bins, histtype="step", linewidth=1.6, label=label)
    axis.axvline(10, color="red", linestyle="--", linewidth=1, label="target p99 = 10 ms")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("latency, intended send -> fill ExecutionReport at the client (ms, log)")
    axis.set_ylabel("orders (log)")
    axis.set_title(f"FIX NewOrderSingle -> fill at {args.rate} orders/s for {args.duration:.0f} s (fixed schedule)")
    axis.legend(fontsize=8)
    axis.grid(True, which="both", alpha=0.25)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"comma-separated subset of {','.join(PATHS)}")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the fixed-rate latency run")
    parser.add_argument("--rate", type=int, default=500, help="orders/s of the latency run")
    parser.add_argument("--orders", type=int, default=6000, help="orders of the pipelined throughput run")
    parser.add_argument("--window", type=int, default=200, help="max orders in flight in the throughput run")
    parser.add_argument("--warmup", type=int, default=300, help="orders sent (pipelined) before measuring")
    parser.add_argument("--mm-interval-ms", type=int, default=200, help="market maker re-quote interval")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL admin URL (a database is created)")
    parser.add_argument("--png", type=Path, default=REPO / "bench" / "gateway_latency.png")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) even on success")
    parser.add_argument("--hold-s", type=float, default=0.0, help=argparse.SUPPRESS)  # keep processes for py-spy
    args = parser.parse_args()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = set(paths) - set(PATHS)
    if unknown:
        parser.error(f"unknown path(s): {sorted(unknown)}")

    work = Path(tempfile.mkdtemp(prefix="gw_bench_"))
    results: list[PathResult] = []
    keep = args.keep
    try:
        for name in paths:
            if name == "relay":
                results.append(run_relay_path(work / name, args))
            else:
                results.append(run_full_path(name, work / name, args))
            keep |= bool(results[-1].latency.missing or results[-1].throughput.missing)
    except BaseException:
        keep = True
        raise
    finally:
        if keep:
            print(f"\nlogs, stores and journals kept in {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    table = summary(results, args)
    print("\n" + table)
    if args.png:
        histogram(results, args.png, args)
        print(f"\nhistogram: {args.png}")
    if args.json:
        args.json.write_text(json.dumps([{
            "path": r.name, "orders_per_s": r.throughput.rate, "throughput_orders": r.throughput.orders,
            "throughput_s": r.throughput.seconds, "rate": r.latency.rate, "duration_s": r.latency.seconds,
            "sent": r.latency.sent, "p50_ms": r.latency.pct(.5) / 1000, "p99_ms": r.latency.pct(.99) / 1000,
            "p999_ms": r.latency.pct(.999) / 1000, "max_ms": r.latency.pct(1) / 1000,
            "missing": r.latency.missing + r.throughput.missing, "rejects": r.latency.rejects + r.throughput.rejects,
            "sender_lag_max_ms": r.latency.send_lag_max_us / 1000, "verified": r.verified, "facts": r.facts,
        } for r in results], indent=2), encoding="utf-8")
    failed = any(r.latency.missing or r.throughput.missing or (r.verified and not r.verified.startswith("OK"))
                 for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
