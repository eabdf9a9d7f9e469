"""Each gateway session's persisted sequence numbers, read from QuickFIX's file store (the process need not run).

A QuickFIX FileStore keeps `<BeginString>-<Sender>-<Target>.seqnums` holding `next sender : next target`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from oms.gateway.config import GatewaySettings


@dataclass(frozen=True, slots=True)
class SessionStatus:
    key: str
    role: str  # "client" or "venue"
    accounts: tuple[str, ...]
    next_sender_seq: int | None  # None: the session never ran with this store
    next_target_seq: int | None


def _seqnums(settings: Mapping[str, str], begin: str, sender: str, target: str) -> tuple[int | None, int | None]:
    store = next((value for key, value in settings.items() if key.upper() == "FILESTOREPATH"), None)
    if store is None:
        return None, None
    path = Path(store) / f"{begin}-{sender}-{target}.seqnums"
    try:
        sender_text, _, target_text = path.read_text().partition(":")
        return int(sender_text), int(target_text)
    except (OSError, ValueError):
        return None, None


def session_statuses(settings: GatewaySettings) -> list[SessionStatus]:
    statuses = [
        SessionStatus(client.key, "client", tuple(sorted(client.accounts)),
                      *_seqnums(client.settings, client.begin_string, client.our_comp_id, client.client_comp_id))
        for client in settings.clients
    ]
    venue = settings.venue
    statuses.append(SessionStatus(venue.key, "venue", (),
                                  *_seqnums(venue.settings, venue.begin_string, venue.our_comp_id, venue.venue_comp_id)))
    return statuses
