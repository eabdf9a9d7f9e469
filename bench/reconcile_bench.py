"""Benchmark of the nightly reconciliation on PostgreSQL: a venue trade report of N rows against a book of N fills.

Set-up (not timed): a fresh database ``rec_bench_<N>``, migrated, filled with COPY: accounts, instruments, orders
(every order filled by four fills), executions, and a ledger that agrees with the fills (one deposit and one
summary trade entry per account, so ``oms ledger verify`` is clean). The report is written as the venue writes
it, with breaks sprinkled in at a fixed rate (per 20,000 fills: one fill the venue leaves out, one fill we never
booked, one price and one quantity difference, one repeated row, one row under another ExecID).

Timed: what ``oms reconcile --date D --report FILE`` does once its imports and settings are done:
``reconcile.runner.run_file`` with our CompID from sessions.cfg (as the command passes it), then rendering the
run document, the summary and the table (load + compare + checks + ledger verify + rendering), in a fresh child
process per repetition. Not timed: writing the stored-run file. Peak memory is ``VmHWM`` of that child (the
PostgreSQL server's memory is not included); CPU is that child's (every thread) plus the run's PostgreSQL
processes (``ServerCpu``). The median of the repetitions is reported.

    .venv/bin/python bench/reconcile_bench.py --rows 200000 500000 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get("OMS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TRADE_DATE = date(2026, 11, 20)
START = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
ACCOUNTS = 200
SYMBOLS = tuple(f"SYM{i:02d}" for i in range(20))
FILLS_PER_ORDER = 4
BREAK_EVERY = 20_000
DEPOSIT = Decimal("1000000000000")
COLUMNS = "exec_id,order_id,cl_ord_id,broker_comp_id,symbol,side,quantity,price,fee,transact_time"
FEE_RATE = Decimal("0.0005")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Fill:
    index: int
    order: int
    account: str
    symbol: str
    side: str
    qty: int
    price: Decimal
    fee: Decimal
    moment: datetime


def _url(database: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def fills(rows: int) -> list[Fill]:
    """Orders in threes (buy, buy, sell of one account and symbol), so no account ever holds negative shares."""
    found = []
    for index in range(rows):
        order = index // FILLS_PER_ORDER
        group = order // 3
        qty = 10 + group % 7
        price = Decimal(10_000 + index % 50) / 100
        found.append(Fill(index, order, f"BA{group % ACCOUNTS:03d}", SYMBOLS[(group // ACCOUNTS) % len(SYMBOLS)],
                          "sell" if order % 3 == 2 else "buy", qty, price,
                          (qty * price * FEE_RATE).quantize(CENT), START + timedelta(milliseconds=index)))
    return found


def _kind(fill: Fill) -> int:
    return fill.index % BREAK_EVERY


LEFT_OUT, NOT_BOOKED, PRICE_OFF, QTY_OFF, REPEATED, OTHER_EXEC_ID = 7, 11, 13, 17, 19, 23


def write_report(path: Path, book: list[Fill]) -> None:
    stamp = "%Y-%m-%dT%H:%M:%S.%fZ"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(COLUMNS + "\n")
        for fill in book:
            kind = _kind(fill)
            if kind == LEFT_OUT:
                continue
            exec_id = f"R{fill.index}" if kind == OTHER_EXEC_ID else f"E{fill.index}"
            price = fill.price + CENT if kind == PRICE_OFF else fill.price
            qty = fill.qty + 1 if kind == QTY_OFF else fill.qty
            line = (f"{exec_id},V{fill.order},C{fill.order},OMS,{fill.symbol},{fill.side.upper()},{qty},{price},"
                    f"{fill.fee},{fill.moment.strftime(stamp)}\n")
            handle.write(line * (2 if kind == REPEATED else 1))


def _copy(cursor, table: str, columns: str, lines: list[str]) -> None:  # type: ignore[no-untyped-def]
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for number, line in enumerate(lines, 1):
            buffer.write(line)
            if number % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def build_book(database: str, book: list[Fill]) -> None:
    """A fresh, migrated database holding the fills (all but the ones we 'never booked') and their ledger."""
    import psycopg
    from sqlalchemy import create_engine, text

    from oms.db.engine import make_engine
    from oms.db.migrate import upgrade

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    engine = make_engine(_url(database))
    upgrade(engine)
    engine.dispose()
    now = START.isoformat()
    booked = [fill for fill in book if _kind(fill) != NOT_BOOKED]
    orders: dict[int, list[Fill]] = {}
    for fill in book:
        orders.setdefault(fill.order, []).append(fill)
    with psycopg.connect(_url(database).replace("postgresql+psycopg", "postgresql")) as connection:
        cursor = connection.cursor()
        _copy(cursor, "instruments", "symbol, currency, tick_size, lot_size, fractional, qty_decimals, tradable",
              [f"{symbol}\tUSD\t0.01\t1\tf\t0\tt\n" for symbol in SYMBOLS])
        accounts = sorted({fill.account for fill in book})
        _copy(cursor, "accounts", "id, status, currency, max_order_qty, max_order_notional, price_collar_pct, "
                                  "market_collar_pct, max_orders_per_second, kill_switch, created_at",
              [f"{account}\tactive\tUSD\t1000000\t100000000\t10\t10\t0\tf\t{now}\n" for account in accounts])
        order_lines = []
        for order, its in orders.items():
            first = its[0]
            mine = [fill for fill in its if _kind(fill) != NOT_BOOKED]
            cum = sum(fill.qty for fill in mine)
            notional = sum(fill.qty * fill.price for fill in mine)
            order_lines.append(
                f"O{order}\t{first.account}\tK{order}\trest\t{first.symbol}\t{first.side}\tlimit\tday\t"
                f"{first.qty * FILLS_PER_ORDER}\t101.00\tfilled\t{cum}\t{first.qty * FILLS_PER_ORDER - cum}\t"
                f"{notional}\t{sum(fill.fee for fill in mine)}\tV{order}\tC{order}\tbench\t{now}\t{now}\n")
        _copy(cursor, "orders", "id, account_id, cl_ord_id, source, symbol, side, order_type, time_in_force, qty, "
                                "limit_price, status, cum_qty, leaves_qty, cum_notional, cum_fees, venue_order_id, "
                                "venue_cl_ord_id, fingerprint, created_at, updated_at", order_lines)
        _copy(cursor, "executions", "id, venue_exec_id, order_id, account_id, exec_type, symbol, side, last_qty, "
                                    "last_px, fee, cum_qty, leaves_qty, venue_order_id, transact_time, trade_date, "
                                    "created_at",
              [f"X{f.index}\tE{f.index}\tO{f.order}\t{f.account}\ttrade\t{f.symbol}\t{f.side}\t{f.qty}\t{f.price}\t"
               f"{f.fee}\t0\t0\tV{f.order}\t{f.moment.isoformat()}\t{TRADE_DATE}\t{now}\n" for f in booked])
        _ledger(cursor, booked, accounts, now)
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")


def _ledger(cursor, booked: list[Fill], accounts: list[str], now: str) -> None:  # type: ignore[no-untyped-def]
    """Per account a deposit and one summary trade entry; broker accounts balance every entry per asset."""
    cash: dict[str, Decimal] = dict.fromkeys(accounts, Decimal(0))
    traded: dict[str, Decimal] = dict.fromkeys(accounts, Decimal(0))
    fees: dict[str, Decimal] = dict.fromkeys(accounts, Decimal(0))
    shares: dict[tuple[str, str], int] = {}
    for fill in booked:
        moved = fill.qty * fill.price
        traded[fill.account] += -moved if fill.side == "buy" else moved
        fees[fill.account] += fill.fee
        signed = fill.qty if fill.side == "buy" else -fill.qty
        shares[(fill.account, fill.symbol)] = shares.get((fill.account, fill.symbol), 0) + signed
    for account in accounts:
        cash[account] = DEPOSIT + traded[account] - fees[account]
    keys = [f"{a}/cash:available/USD\t{a}\tcash:available\tUSD\tt\t{cash[a]}\n" for a in accounts]
    keys += [f"{a}/shares:available/{s}\t{a}\tshares:available\t{s}\tt\t{q}\n" for (a, s), q in shares.items()]
    keys += [f"@broker/{name}/USD\t@broker\t{name}\tUSD\tf\t0\n" for name in ("bank", "exchange:cash", "fees")]
    keys += [f"@broker/exchange:shares/{s}\t@broker\texchange:shares\t{s}\tf\t0\n" for s in SYMBOLS]
    _copy(cursor, "ledger_accounts", "key, owner, name, asset, keeps_balance, balance", keys)
    entries, postings = [], []
    for account in accounts:
        entries.append(f"D-{account}\tdeposit\tbench-deposit-{account}\t{account}\t{now}\n")
        postings += [f"D-{account}\t@broker/bank/USD\tUSD\t{-DEPOSIT}\n",
                     f"D-{account}\t{account}/cash:available/USD\tUSD\t{DEPOSIT}\n"]
        entries.append(f"T-{account}\ttrade\tbench-trades-{account}\t{account}\t{now}\n")
        postings += [f"T-{account}\t{account}/cash:available/USD\tUSD\t{traded[account] - fees[account]}\n",
                     f"T-{account}\t@broker/exchange:cash/USD\tUSD\t{-traded[account]}\n",
                     f"T-{account}\t@broker/fees/USD\tUSD\t{fees[account]}\n"]
    for (account, symbol), qty in shares.items():
        postings += [f"T-{account}\t{account}/shares:available/{symbol}\t{symbol}\t{qty}\n",
                     f"T-{account}\t@broker/exchange:shares/{symbol}\t{symbol}\t{-qty}\n"]
    _copy(cursor, "journal_entries", "id, kind, reference, account_id, created_at", entries)
    _copy(cursor, "postings", "entry_id, ledger_account, asset, amount", postings)


def _peak_rss_mb() -> float:
    """This process's peak resident memory. ``VmHWM`` rather than ``ru_maxrss``: on Linux the latter keeps the
    parent's peak across fork and exec, so a child started by a big parent would report the parent's memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


class ServerCpu:
    """CPU time of the PostgreSQL processes that serve the run: its backends (their process title names the
    database) and the parallel workers they start, read from /proc every 10 ms while the run goes. A process that
    ends loses at most its last 10 ms; a backend the run closes (the report's session is closed, not pooled) and
    the short-lived parallel workers are counted too. The server runs on this machine, which is why this can be
    read; CPU time suffers far less than wall time from other people's work on the same cores."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.start_ticks: dict[int, int] = {}
        self.last_ticks: dict[int, int] = {}
        self.ours: dict[int, bool] = {}
        self.own_seconds = 0.0  # this sampler's CPU, to take out of the run's own figure
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._sample(first=True)
        self.thread.start()

    def stop(self) -> float:
        self.stopping.set()
        self.thread.join()
        self._sample()
        return sum(ticks - self.start_ticks.get(pid, 0) for pid, ticks in self.last_ticks.items()) / self.ticks

    def _loop(self) -> None:
        started = time.thread_time()
        while not self.stopping.wait(0.01):
            self._sample()
        self.own_seconds = time.thread_time() - started

    def _belongs(self, pid: int) -> bool:
        """Ours: a backend whose title names the database, or a parallel worker of one. A backend just forked
        still shows the postmaster's command line until it sets its title: asked again until it has."""
        known = self.ours.get(pid)
        if known is not None:
            return known
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                self.ours[pid] = False
                return False
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            return False
        if not title.startswith("postgres:"):
            return False  # not titled yet
        leader = title.rsplit("parallel worker for PID ", 1)
        known = f" {self.database} " in title or (
            len(leader) == 2 and leader[1].isdigit() and self.ours.get(int(leader[1]), False))
        self.ours[pid] = known
        return known

    def _sample(self, first: bool = False) -> None:
        for name in os.listdir("/proc"):
            if not name.isdigit() or not self._belongs(int(name)):
                continue
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks = int(fields[11]) + int(fields[12])  # utime, stime
            if first:
                self.start_ticks[int(name)] = ticks
            self.last_ticks[int(name)] = ticks


class Timeline:
    """When each part of the run started and ended, in seconds from the run's start: the functions are wrapped so
    they note the clock on the way in and out (nothing else changes; a few clock reads per run)."""

    PARTS = (("load", "reconcile.pg_report", "load_report"), ("compare", "reconcile.set_compare", "compare_loaded"),
             ("our_side", "reconcile.set_compare", "_our_side"), ("verify", "reconcile.runner", "_verify"))

    def __init__(self) -> None:
        import importlib

        self.start = time.perf_counter()
        self.spans: dict[str, list[tuple[float, float]]] = {}
        for name, module_name, function in self.PARTS:
            module = importlib.import_module(module_name)
            if hasattr(module, function):  # (an older tree may lack a part)
                setattr(module, function, self._wrapped(name, getattr(module, function)))

    def _wrapped(self, name: str, function):  # type: ignore[no-untyped-def]
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.spans.setdefault(name, []).append((began - self.start, time.perf_counter() - self.start))

        return timed

    def report(self) -> dict[str, list[list[float]]]:
        return {name: [[round(a, 3), round(b, 3)] for a, b in spans] for name, spans in self.spans.items()}


def _phases(db, report: Path, comp_id: str | None) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The same work again, one phase at a time (in the run, the ledger verification overlaps the others)."""
    from oms.ledger.verify import verify_ledger
    from reconcile import pg_report, set_compare

    timings: dict[str, float] = {}
    with db.engine.connect() as connection:
        started = time.perf_counter()
        loaded = pg_report.load_report(connection.connection.driver_connection, report, TRADE_DATE, None, comp_id)
        timings["load_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        connection.execution_options(isolation_level="REPEATABLE READ")
        set_compare.compare_loaded(connection, TRADE_DATE, loaded.rows, loaded.repeated)
        connection.rollback()
        timings["compare_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        verify_ledger(connection)
        timings["verify_seconds"] = time.perf_counter() - started
        connection.rollback()
    return timings


def _our_comp_id() -> str | None:
    """What ``oms reconcile`` passes as our broker: the SenderCompID of the venue session in sessions.cfg (the
    repository's names OMS, the broker of every row of the benchmark's report)."""
    from reconcile.venue_fetch import VenueFetchError, session_settings

    try:
        return session_settings(ROOT / "sessions.cfg").sender_comp_id
    except VenueFetchError:
        return None


def timed_run(database: str, report: Path) -> dict[str, object]:
    """One reconciliation, as ``oms reconcile --report`` runs it (without the stored-run file), in this process."""
    from oms.service.uow import Database
    from reconcile import output
    from reconcile.runner import run_file

    comp_id = _our_comp_id()
    load_average = float(Path("/proc/loadavg").read_text().split()[0])  # the machine is shared: say how busy
    db = Database.from_url(_url(database), checkpoint_interval_s=None)
    baseline_mb = _peak_rss_mb()
    server = ServerCpu(database)
    server.start()
    timeline = Timeline()
    cpu_before = _own_cpu_seconds()
    started = timeline.start = time.perf_counter()
    result = run_file(db, TRADE_DATE, report, comp_id=comp_id, apply=False)
    rendering = time.perf_counter() - started
    document = output.as_document(result)
    lines = output.summary_lines(result) + output.table_lines(result)
    seconds = time.perf_counter() - started
    timeline.spans["render"] = [(rendering, seconds)]
    spans = timeline.report()  # before the phases alone below, which go through the same functions
    client_cpu = _own_cpu_seconds() - cpu_before
    db.dispose()  # the run's backends end: their last CPU ticks are in
    time.sleep(0.05)
    server_cpu = server.stop()
    client_cpu -= server.own_seconds
    peak_mb = _peak_rss_mb()
    db = Database.from_url(_url(database), checkpoint_interval_s=None)
    phases = _phases(db, report, comp_id)
    db.dispose()
    counts: dict[str, int] = {}
    for item in document["breaks"]:
        counts[item["kind"]] = counts.get(item["kind"], 0) + 1
    in_run = {name: round(spans[name][0][1] - spans[name][0][0], 3) for name in spans}
    return {"seconds": seconds, "load_average_1m": load_average, "in_run_seconds": in_run,
            "peak_rss_mb": peak_mb, "baseline_rss_mb": baseline_mb,
            "client_cpu_seconds": client_cpu, "server_cpu_seconds": server_cpu, "timeline": spans,
            **phases,
            "report_rows": document["report_rows"], "comp_id": comp_id, "rendered_lines": len(lines),
            "matched": document["matched"], "breaks": counts, "ledger_violations": len(document["ledger_violations"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 500_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/rec_bench"))
    parser.add_argument("--child", nargs=2, metavar=("DATABASE", "REPORT"), help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark databases.")
    parser.add_argument("--reuse", action="store_true", help="Use databases and reports kept by --keep.")
    parser.add_argument("--output", type=Path, help="Also write the summary as JSON to this file.")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(timed_run(args.child[0], Path(args.child[1]))))
        return
    args.work_dir.mkdir(parents=True, exist_ok=True)
    summary = []
    for rows in args.rows:
        database, report = f"rec_bench_{rows}", args.work_dir / f"trades_{rows}.csv"
        started = time.perf_counter()
        if not (args.reuse and report.is_file()):
            book = fills(rows)
            write_report(report, book)
            build_book(database, book)
            del book
        print(f"{rows} rows: set up in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        runs = []
        for _ in range(args.repeat):
            child = subprocess.run([sys.executable, __file__, "--child", database, str(report)], check=True,
                                   capture_output=True, text=True, cwd=ROOT)
            runs.append(json.loads(child.stdout))
            last = runs[-1]
            phases = ", ".join(f"{name} {value:.2f}" for name, value in last["in_run_seconds"].items())
            print(f"  {last['seconds']:.2f} s (load average {last['load_average_1m']:.2f}), peak "
                  f"{last['peak_rss_mb']:.0f} MB, CPU {last['client_cpu_seconds']:.2f} s here + "
                  f"{last['server_cpu_seconds']:.2f} s in PostgreSQL; in the run: {phases}; alone: load "
                  f"{last['load_seconds']:.2f} s, compare {last['compare_seconds']:.2f} s, ledger verify "
                  f"{last['verify_seconds']:.2f} s", file=sys.stderr)
        median = {key: statistics.median(run[key] for run in runs)  # type: ignore[misc]
                  for key in ("seconds", "peak_rss_mb", "load_seconds", "compare_seconds", "verify_seconds",
                              "client_cpu_seconds", "server_cpu_seconds")}
        summary.append({"rows": rows, "median_seconds": round(median["seconds"], 2),
                        "rows_per_second": round(rows / median["seconds"]),
                        "median_peak_rss_mb": round(median["peak_rss_mb"]),
                        "median_cpu_seconds": {"client": round(median["client_cpu_seconds"], 2),
                                               "server": round(median["server_cpu_seconds"], 2)},
                        "median_phases_seconds": {key: round(median[f"{key}_seconds"], 2)
                                                  for key in ("load", "compare", "verify")},
                        "median_in_run_seconds": {key: round(statistics.median(run["in_run_seconds"][key]
                                                                               for run in runs), 2)
                                                  for key in runs[0]["in_run_seconds"]},
                        "load_averages_1m": [run["load_average_1m"] for run in runs],
                        "runs": runs})
        if not args.keep:
            from sqlalchemy import create_engine, text

            admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
            admin.dispose()
    print(json.dumps(summary, indent=2))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
