"""Wiring and run loop of the simulated exchange: journal replay, engine, QuickFIX acceptor, market-maker
timer and the control endpoint. `Venue` is what `oms exchange run` and the tests start.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import quickfix as fix

from exchange.config import VenueConfig
from exchange.control import ControlServer
from exchange.engine import CancelOrder, Command, MatchingEngine
from exchange.faults import FaultInjector
from exchange.fix_app import QuickFixSender, VenueApplication
from exchange.group_commit import GroupCommitSender
from exchange.instruments import DEFAULT_INSTRUMENTS_CSV, Instrument, load_instruments
from exchange.journal import Journal, JournaledEngine, decode_command
from exchange.market_maker import MarketMaker
from exchange.service import Clock, MarketMakerFeed, SessionKey, VenueService, utc_now
from exchange.trade_report import ExecIdIndex

log = logging.getLogger(__name__)


def instruments_for(config: VenueConfig) -> dict[str, Instrument]:
    return load_instruments(config.instruments_file or DEFAULT_INSTRUMENTS_CSV)


def new_engine(config: VenueConfig) -> MatchingEngine:
    instruments = instruments_for(config)
    if config.fee_rate is None:
        return MatchingEngine(instruments)
    return MatchingEngine(instruments, fee_rate=config.fee_rate)


def read_journal(path: Path) -> Iterator[Command]:
    """Read-only journal reader for offline tools: complete lines only, never truncates (a running venue
    may be appending the last line right now)."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        data = handle.read()
    complete, _, _ = data.rpartition(b"\n")
    for raw in complete.split(b"\n"):
        if raw.strip():
            yield decode_command(raw.decode("utf-8"))


def replay(config: VenueConfig, engine: MatchingEngine, index: ExecIdIndex, journal: Journal | None) -> int:
    """Rebuild engine state and the ExecID index from the journal (the engine is deterministic)."""
    commands = journal.commands() if journal is not None else read_journal(config.journal_path)
    count = 0
    for command in commands:
        index.observe(engine.process(command))
        count += 1
    return count


class Venue:
    """One simulated exchange process: start() it, stop() it; safe to stop after a failed start."""

    def __init__(self, config: VenueConfig, clock: Clock = utc_now) -> None:
        self.config = config
        self._clock = clock
        self._acceptor: fix.ThreadedSocketAcceptor | None = None
        self._control: ControlServer | None = None
        self._timer_stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._sender: GroupCommitSender | None = None
        self.service: VenueService | None = None
        self.engine: JournaledEngine | None = None

    @property
    def control_port(self) -> int | None:
        return self._control.port if self._control else None

    def start(self) -> None:
        config = self.config
        engine = new_engine(config)
        index = ExecIdIndex()
        # Group commit: the journal is fsynced once per group of commands, before any of their reports leave.
        journal = Journal(config.journal_path, sync="batch")
        replayed = replay(config, engine, index, journal)
        log.info("journal %s: replayed %d commands, last seq %d", config.journal_path, replayed, engine.last_seq)
        self.engine = JournaledEngine(engine, journal)
        maker = MarketMakerFeed(MarketMaker(engine.instruments, config.market_maker_seed), f"R{engine.last_seq}")
        quickfix = QuickFixSender()
        self._sender = GroupCommitSender(self.engine, quickfix.send, quickfix.disconnect)
        self._sender.start()
        sessions = [SessionKey(s.begin_string, s.sender_comp_id, s.target_comp_id) for s in config.sessions]
        faults = FaultInjector(config.faults, config.fault_state_file)
        self.service = VenueService(self.engine, index, faults, self._sender.send, self._sender.disconnect, sessions,
                                    maker, self._clock)
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
        self._acceptor.start()
        if config.control_port >= 0:
            self._control = ControlServer(self.service, config.control_host, config.control_port)
            self._control.start()
        if config.market_maker_interval_ms > 0:
            self._timer = threading.Thread(target=self._market_maker_loop, name="market-maker", daemon=True)
            self._timer.start()
        log.info("venue up: FIX port %s, control port %s", config.accept_port, self.control_port)

    def _retire_stale_quotes(self, maker: MarketMakerFeed) -> None:
        """Quotes left by a previous run belong to a market maker that no longer tracks them: cancel them so
        the restarted market maker starts from a clean book (journaled like any command)."""
        assert self.service is not None and self.engine is not None
        for number, order in enumerate(self.engine.engine.orders(owner=maker.owner, working_only=True), 1):
            self.service.submit(CancelOrder(owner=maker.owner, cl_ord_id=f"X{self.engine.engine.last_seq}.{number}",
                                            orig_cl_ord_id=order.cl_ord_id, timestamp=self._clock()))

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

    def stop(self) -> None:
        self._timer_stop.set()
        if self._timer is not None:
            self._timer.join(timeout=5)
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
