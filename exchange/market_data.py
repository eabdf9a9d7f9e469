"""Top-of-book market data: subscriptions, snapshots (35=W) and incremental refreshes (35=X).

The venue publishes three entry types per symbol: best bid, best offer and last trade. After every engine
command the service hands us the new top of book of the symbols it touched; we diff against what each
symbol last published and send one incremental refresh per subscription that covers a changed symbol.
Not thread-safe by itself: the service calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from exchange.translate import FixVersion, Outbound, OutGroup, fix_decimal

MD_REQ_ID, SUBSCRIPTION_REQUEST_TYPE, MD_REQ_REJ_REASON, MD_UPDATE_ACTION = 262, 263, 281, 279
MD_ENTRY_TYPE, MD_ENTRY_PX, MD_ENTRY_SIZE, NO_MD_ENTRIES, SYMBOL, TEXT = 269, 270, 271, 268, 55, 58

SNAPSHOT, SUBSCRIBE, UNSUBSCRIBE = "0", "1", "2"
BID, OFFER, TRADE = "0", "1", "2"
SUPPORTED_ENTRY_TYPES = (BID, OFFER, TRADE)
ACTION_NEW, ACTION_CHANGE, ACTION_DELETE = "0", "1", "2"
REJ_UNKNOWN_SYMBOL, REJ_DUPLICATE_ID, REJ_UNSUPPORTED_SUBSCRIPTION, REJ_UNSUPPORTED_ENTRY_TYPE = "0", "1", "4", "8"
MAX_SUBSCRIPTIONS_PER_SESSION = 1000


@dataclass(frozen=True, slots=True)
class TopOfBook:
    """Price and size per entry type; None when the book side is empty or nothing has traded."""

    bid: tuple[Decimal, Decimal] | None
    offer: tuple[Decimal, Decimal] | None
    trade: Decimal | None

    def entry(self, entry_type: str) -> tuple[Decimal, Decimal | None] | None:
        if entry_type == BID:
            return self.bid
        if entry_type == OFFER:
            return self.offer
        return (self.trade, None) if self.trade is not None else None


EMPTY_TOP = TopOfBook(None, None, None)


@dataclass(frozen=True, slots=True)
class MarketDataRequest:
    """The parts of 35=V the venue uses, extracted by the FIX layer."""

    md_req_id: str
    subscription_type: str
    entry_types: tuple[str, ...]
    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Subscription:
    md_req_id: str
    symbols: frozenset[str]
    entry_types: tuple[str, ...]
    version: FixVersion


class MarketDataHub:
    """Subscriptions per session and the last published top of book per symbol."""

    def __init__(self, known_symbols: Iterable[str]) -> None:
        self._known = frozenset(known_symbols)
        self._subscriptions: dict[Hashable, dict[str, Subscription]] = {}
        self._published: dict[str, TopOfBook] = {}

    def request(self, session: Hashable, request: MarketDataRequest, version: FixVersion,
                tops: Mapping[str, TopOfBook]) -> list[Outbound]:
        """Answer a MarketDataRequest: snapshots, a reject, or nothing (unsubscribe).
        `tops` holds the current top of book of every requested known symbol."""
        if request.subscription_type == UNSUBSCRIBE:
            self._subscriptions.get(session, {}).pop(request.md_req_id, None)
            return []
        if request.subscription_type not in (SNAPSHOT, SUBSCRIBE):
            return [reject(request.md_req_id, REJ_UNSUPPORTED_SUBSCRIPTION,
                           f"UNSUPPORTED_SUBSCRIPTION: type={request.subscription_type}")]
        unknown = [s for s in request.symbols if s not in self._known]
        if unknown or not request.symbols:
            return [reject(request.md_req_id, REJ_UNKNOWN_SYMBOL, f"UNKNOWN_SYMBOL: symbol={','.join(unknown)}")]
        entry_types = tuple(t for t in request.entry_types if t in SUPPORTED_ENTRY_TYPES)
        if not entry_types:
            return [reject(request.md_req_id, REJ_UNSUPPORTED_ENTRY_TYPE,
                           f"UNSUPPORTED_ENTRY_TYPE: types={','.join(request.entry_types)}")]
        if request.subscription_type == SUBSCRIBE:
            session_subs = self._subscriptions.setdefault(session, {})
            if request.md_req_id in session_subs:
                return [reject(request.md_req_id, REJ_DUPLICATE_ID, f"DUPLICATE_MD_REQ_ID: id={request.md_req_id}")]
            if len(session_subs) >= MAX_SUBSCRIPTIONS_PER_SESSION:
                return [reject(request.md_req_id, REJ_UNSUPPORTED_SUBSCRIPTION, "TOO_MANY_SUBSCRIPTIONS")]
            session_subs[request.md_req_id] = Subscription(request.md_req_id, frozenset(request.symbols),
                                                            entry_types, version)
        for symbol in request.symbols:
            self._published[symbol] = tops[symbol]  # the baseline the next incremental diffs against
        return [snapshot(request.md_req_id, symbol, tops[symbol], entry_types, version)
                for symbol in request.symbols]

    def drop_session(self, session: Hashable) -> None:
        """Subscriptions end with the FIX session (FIX market data is not resumed after logon)."""
        self._subscriptions.pop(session, None)

    def has_subscribers(self) -> bool:
        return any(self._subscriptions.values())

    def changes(self, tops: Mapping[str, TopOfBook]) -> list[tuple[Hashable, Outbound]]:
        """Incremental refreshes for symbols whose top of book moved since last published."""
        moved: dict[str, tuple[TopOfBook, TopOfBook]] = {}
        for symbol, top in tops.items():
            before = self._published.get(symbol, EMPTY_TOP)
            if top != before:
                moved[symbol] = (before, top)
                self._published[symbol] = top
        if not moved:
            return []
        out: list[tuple[Hashable, Outbound]] = []
        for session, subs in self._subscriptions.items():
            for sub in subs.values():
                entries = [entry for symbol in sorted(sub.symbols & moved.keys())
                           for entry in _diff(symbol, *moved[symbol], sub.entry_types)]
                if entries:
                    out.append((session, incremental(sub.md_req_id, entries)))
        return out


def _diff(symbol: str, before: TopOfBook, after: TopOfBook,
          entry_types: tuple[str, ...]) -> list[tuple[tuple[int, str], ...]]:
    entries: list[tuple[tuple[int, str], ...]] = []
    for entry_type in entry_types:
        old, new = before.entry(entry_type), after.entry(entry_type)
        if old == new:
            continue
        if new is None:
            assert old is not None
            entries.append(_entry(ACTION_DELETE, entry_type, symbol, old))
        else:
            entries.append(_entry(ACTION_NEW if old is None else ACTION_CHANGE, entry_type, symbol, new))
    return entries


def _entry(action: str, entry_type: str, symbol: str,
           value: tuple[Decimal, Decimal | None]) -> tuple[tuple[int, str], ...]:
    price, size = value
    fields: list[tuple[int, str]] = [(MD_UPDATE_ACTION, action), (MD_ENTRY_TYPE, entry_type), (SYMBOL, symbol),
                                     (MD_ENTRY_PX, fix_decimal(price))]
    if size is not None:
        fields.append((MD_ENTRY_SIZE, fix_decimal(size)))
    return tuple(fields)


def snapshot(md_req_id: str, symbol: str, top: TopOfBook, entry_types: tuple[str, ...],
             version: FixVersion) -> Outbound:
    """35=W. FIX 4.2 requires a price in every entry, so empty sides are left out (FIX 4.4 too, for
    consistency: an absent entry means 'none')."""
    entries = []
    for entry_type in entry_types:
        value = top.entry(entry_type)
        if value is None:
            continue
        price, size = value
        fields: list[tuple[int, str]] = [(MD_ENTRY_TYPE, entry_type), (MD_ENTRY_PX, fix_decimal(price))]
        if size is not None:
            fields.append((MD_ENTRY_SIZE, fix_decimal(size)))
        entries.append(tuple(fields))
    return Outbound("W", ((MD_REQ_ID, md_req_id), (SYMBOL, symbol)),
                    (OutGroup(NO_MD_ENTRIES, tuple(entries)),))


def incremental(md_req_id: str, entries: list[tuple[tuple[int, str], ...]]) -> Outbound:
    return Outbound("X", ((MD_REQ_ID, md_req_id),), (OutGroup(NO_MD_ENTRIES, tuple(entries)),))


def reject(md_req_id: str, reason: str, text: str) -> Outbound:
    return Outbound("Y", ((MD_REQ_ID, md_req_id), (MD_REQ_REJ_REASON, reason), (TEXT, text)))
