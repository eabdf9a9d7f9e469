"""Wiring and run loop of the simulated exchange: journal replay, engine, QuickFIX acceptor, market-maker
timer and the control endpoint. `Venue` is what `oms exchange run` and the tests start.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from types import FrameType
from typing import NamedTuple

import quickfix as fix

from exchange import snapshot
from exchange.config import VenueConfig
from exchange.control import ControlServer
from exchange.end_of_day import EndOfDaySchedule
from exchange.engine import CancelOrder, Command, EndOfDay, MatchingEngine
from exchange.faults import FaultInjector
from exchange.fix_app import QuickFixSender, VenueApplication
from exchange.group_commit import GroupCommitSender
from exchange.instruments import DEFAULT_INSTRUMENTS_CSV, Instrument, load_instruments
from exchange.journal import Journal, JournaledEngine, decode_command
from exchange.market_maker import MarketMaker
from exchange.service import Clock, MarketMakerFeed, SessionKey, VenueService, utc_now
from exchange.snapshot import Snapshot
from exchange.trade_report import ExecIdIndex

log = logging.getLogger(__name__)


def instruments_for(config: VenueConfig) -> dict[str, Instrument]:
    return load_instruments(config.instruments_file or DEFAULT_INSTRUMENTS_CSV)


def new_engine(config: VenueConfig) -> MatchingEngine:
    instruments = instruments_for(config)
    if config.fee_rate is None:
        return MatchingEngine(instruments)
    return MatchingEngine(instruments, fee_rate=config.fee_rate)


def read_journal(path: Path, start: int = 0) -> Iterator[Command]:
    """Read-only journal reader for offline tools: complete lines only, from byte ``start`` (a line's start),
    never truncates (a running venue may be appending the last line right now)."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        handle.seek(start)
        for raw in handle:  # line by line: a journal of weeks needs no more memory than one line
            if raw.endswith(b"\n") and raw.strip():
                yield decode_command(raw.decode("utf-8"))


class Replayed(NamedTuple):
    """What a journal replay saw: enough to tell whether a restart missed an end of day."""

    commands: int
    last_command_at: datetime | None
    last_closed: date | None  # trade date of the last end of day


def replay(config: VenueConfig, engine: MatchingEngine, index: ExecIdIndex, journal: Journal | None,
           after: Snapshot | None = None) -> Replayed:
    """Rebuild engine state and the ExecID index from the journal (the engine is deterministic); with
    ``after``, ``engine`` and ``index`` are that snapshot's and only the journal after it is replayed."""
    start = after.journal_bytes if after is not None else 0
    commands = read_journal(config.journal_path, start) if journal is None else journal.commands(start)
    count = 0
    last_at: datetime | None = after.last_command_at if after is not None else None
    last_closed: date | None = after.last_closed if after is not None else None
    for command in commands:
        index.observe(engine.process(command))
        count += 1
        last_at = command.timestamp
        if isinstance(command, EndOfDay):
            last_closed = command.trade_date
    return Replayed(count, last_at, last_closed)


def rebuild(
    config: VenueConfig, journal: Journal | None,
) -> tuple[MatchingEngine, ExecIdIndex, Replayed, Snapshot | None]:
    """The venue's engine and ExecID index: from the last usable end-of-day snapshot and the journal after it,
    or from the whole journal (``journal`` None: read-only, see :func:`replay`). Also the snapshot used, if any."""
    engine, index = new_engine(config), ExecIdIndex()
    last = snapshot.load(snapshot.snapshot_path(config.journal_path), config.journal_path, engine)
    if last is not None:
        engine, index = last.engine, last.index
    return engine, index, replay(config, engine, index, journal, after=last), last


class Venue:
    """One simulated exchange process: start() it, stop() it; safe to stop after a failed start."""

    def __init__(self, config: VenueConfig, clock: Clock = utc_now) -> None:
        self.config = config
        self._clock = clock
        self._acceptor: fix.ThreadedSocketAcceptor | None = None
        self._control: ControlServer | None = None
        self._timer_stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._day_timer: threading.Thread | None = None
        self._schedule = EndOfDaySchedule(config.end_of_day_time) if config.end_of_day_time is not None else None
        self._sender: GroupCommitSender | None = None
        self.service: VenueService | None = None
        self.engine: JournaledEngine | None = None

    @property
    def control_port(self) -> int | None:
        return self._control.port if self._control else None

    def start(self) -> None:
        config = self.config
        # Group commit: the journal is fsynced once per group of commands, before any of their reports leave.
        journal = Journal(config.journal_path, sync="batch")
        engine, index, replayed, last_snapshot = rebuild(config, journal)
        log.info("journal %s: replayed %d commands%s, last seq %d", config.journal_path, replayed.commands,
                 "" if last_snapshot is None else f" after the snapshot of byte {last_snapshot.journal_bytes}",
                 engine.last_seq)
        self.engine = JournaledEngine(engine, journal)
        maker = MarketMakerFeed(MarketMaker(engine.instruments, config.market_maker_seed), f"R{engine.last_seq}")
        quickfix = QuickFixSender()
        self._sender = GroupCommitSender(self.engine, quickfix.send, quickfix.disconnect)
        self._sender.start()
        sessions = [SessionKey(s.begin_string, s.sender_comp_id, s.target_comp_id) for s in config.sessions]
        faults = FaultInjector(config.faults, config.fault_state_file)
        self.service = VenueService(self.engine, index, faults, self._sender.send, self._sender.disconnect, sessions,
                                    maker, self._clock, on_day_closed=self._save_snapshot)
        self._retire_stale_quotes(maker)
        settings = fix.SessionSettings()
        settings.setFromString(config.quickfix_settings_text())
        self._app = VenueApplication(self.service)
        self._store = fix.FileStoreFactory(settings)
        if any("FILELOGPATH" in (k.upper() for k in s.settings) for s in config.sessions):
            self._log_factory = fix.FileLogFactory(settings)
            self._acceptor = fix.ThreadedSocketAcceptor(self._app, self._store, settings, self._log_factory)
        else:
            self._acceptor = fix.ThreadedSocketAcceptor(self._app, self._store, settings)
        # The sessions exist now (not yet logged on): a missed end of day's reports wait in their stores, and
        # no order of the new day can arrive before it has run.
        self._close_missed_day(replayed)
        self._acceptor.start()
        if config.control_port >= 0:
            self._control = ControlServer(self.service, config.control_host, config.control_port)
            self._control.start()
        if config.market_maker_interval_ms > 0:
            self._timer = threading.Thread(target=self._market_maker_loop, name="market-maker", daemon=True)
            self._timer.start()
        if self._schedule is not None:
            self._day_timer = threading.Thread(target=self._end_of_day_loop, name="end-of-day", daemon=True)
            self._day_timer.start()
        log.info("venue up: FIX port %s, control port %s", config.accept_port, self.control_port)

    def _retire_stale_quotes(self, maker: MarketMakerFeed) -> None:
        """Quotes left by a previous run belong to a market maker that no longer tracks them: cancel them so
        the restarted market maker starts from a clean book (journaled like any command)."""
        assert self.service is not None and self.engine is not None
        for number, order in enumerate(self.engine.engine.orders(owner=maker.owner, working_only=True), 1):
            self.service.submit(CancelOrder(owner=maker.owner, cl_ord_id=f"X{self.engine.engine.last_seq}.{number}",
                                            orig_cl_ord_id=order.cl_ord_id, timestamp=self._clock()))

    def _save_snapshot(self, day_end: EndOfDay, index: ExecIdIndex) -> None:
        """Called with the engine lock held, right after an end of day: snapshot the state the journal has
        reached. A failure costs only restart time (the journal is complete), so it is logged, not raised."""
        assert self.engine is not None
        path = snapshot.snapshot_path(self.config.journal_path)
        try:
            taken = snapshot.take(self.engine.journal, day_end, self.engine.engine, index)
        except Exception:
            log.exception("snapshot %s after the end of day %s failed (the journal is complete)", path,
                          day_end.trade_date)
            return
        log.info("snapshot %s: the state after the end of day %s, %d journal bytes", path, day_end.trade_date,
                 taken.journal_bytes)

    def _market_maker_loop(self) -> None:
        """Quote at once (so the first orders after a start find liquidity), then every interval."""
        interval = self.config.market_maker_interval_ms / 1000
        while True:
            try:
                assert self.service is not None
                self.service.step_market_maker()
            except Exception:
                log.exception("market maker step failed")
            if self._timer_stop.wait(interval):
                return

    def _close_missed_day(self, replayed: Replayed) -> None:
        """Run the end of day a venue that was down at its time missed (see exchange/end_of_day.py)."""
        if self._schedule is None or self.service is None:
            return
        missed = self._schedule.missed(self._clock(), replayed.last_command_at, replayed.last_closed)
        if missed is not None:
            events = self.service.end_of_day(missed)
            log.info("end of day %s run at start (missed while down): %d events", missed, len(events))

    def _end_of_day_loop(self) -> None:
        """Close each trading day at the scheduled time: DAY (and due GTD) orders expire, reported to their owners."""
        assert self._schedule is not None
        due = self._schedule.next_after(self._clock())
        while True:
            wait_s = (due - self._clock()).total_seconds()
            if wait_s > 0:  # in short steps, so a clock that moves (tests, NTP) is followed
                if self._timer_stop.wait(min(wait_s, 30.0)):
                    return
                continue
            trade_date = EndOfDaySchedule.trade_date_ended_at(due)
            try:
                assert self.service is not None
                events = self.service.end_of_day(trade_date)
                log.info("end of day %s: %d events", trade_date, len(events))
            except Exception:
                log.exception("end of day %s failed", trade_date)
            due = self._schedule.next_after(due)

    def stop(self) -> None:
        self._timer_stop.set()
        if self._timer is not None:
            self._timer.join(timeout=5)
        if self._day_timer is not None:
            self._day_timer.join(timeout=5)
        if self._control is not None:
            self._control.stop()
        if self._sender is not None:
            self._sender.stop()  # reports already queued reach the sessions before they close
        if self._acceptor is not None:
            self._acceptor.stop()
            self._acceptor = None
        if self.service is not None:
            self.service.close()
        if self.engine is not None:
            self.engine.close()

    def run_forever(self) -> None:
        """Start, then block until SIGINT/SIGTERM."""
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: stopping", signum)
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        self.start()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            self.stop()
