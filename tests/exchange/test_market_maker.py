"""Market maker: deterministic per seed, quotes on tick, keeps both sides quoted."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D

from exchange.engine import MatchingEngine, OrderType, ReplaceOrder, Side, SubmitOrder, TimeInForce, typed_events
from exchange.instruments import load_instruments
from exchange.market_maker import MarketMaker, MarketMakerConfig

T0 = datetime(2024, 1, 2, 14, 30)


def drive(seed: int, steps: int = 50, with_clients: bool = True) -> tuple[MatchingEngine, list, list]:
    instruments = load_instruments()
    engine = MatchingEngine(instruments)
    mm = MarketMaker(instruments, seed=seed, config=MarketMakerConfig(size=D(100)))
    commands: list = []
    events: list = []
    for i in range(steps):
        ts = T0 + timedelta(seconds=i)
        cmds = mm.step(ts)
        if with_clients:
            side = Side.BUY if i % 2 else Side.SELL
            cmds.append(SubmitOrder("CLIENT", f"c{i}", "AAPL", side, OrderType.MARKET, D(150), None, None,
                                    TimeInForce.DAY, None, ts))
        for cmd in cmds:
            evs = typed_events(engine.process(cmd))
            mm.on_events(evs)
            events.extend(evs)
        commands.extend(cmds)
    return engine, commands, events


def test_same_seed_same_commands_and_events() -> None:
    _, c1, e1 = drive(42)
    _, c2, e2 = drive(42)
    _, c3, _ = drive(43)
    assert c1 == c2 and e1 == e2
    assert c1 != c3


def test_quotes_on_tick_both_sides_and_market_orders_fill() -> None:
    engine, commands, _ = drive(7)
    instruments = load_instruments()
    for cmd in commands:
        if isinstance(cmd, (SubmitOrder, ReplaceOrder)) and cmd.owner == "MM":
            tick = instruments[cmd.symbol].tick_size
            assert cmd.limit_price % tick == 0 and cmd.limit_price > 0
    for sym in instruments:
        if sym == "AAPL":
            continue  # the last client market order may just have taken one side
        bid, ask = engine.best_bid(sym), engine.best_ask(sym)
        assert bid is not None and ask is not None and bid < ask
    client = engine.trades(owner="CLIENT")
    assert client and all("MM" in (t.buy_owner, t.sell_owner) for t in client)
    # with size 100 and client size 150, the quote gets exhausted but is re-entered
    filled = [engine.order_by_cl_ord_id("CLIENT", f"c{i}") for i in range(50)]
    assert sum(1 for s in filled if s is not None and s.cum_qty == 100) >= 40


def test_walk_stays_near_reference() -> None:
    instruments = load_instruments()
    mm = MarketMaker(instruments, seed=1)
    for i in range(2000):
        mm.step(T0 + timedelta(seconds=i))
    for sym, inst in instruments.items():
        assert abs(mm.mid(sym) - inst.reference_price) <= inst.reference_price * D("0.10") + inst.tick_size
