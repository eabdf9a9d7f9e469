"""One order event as the stream carries it: the ``order_events`` row, flat, JSON-safe.

``sequence`` is the row's global id (the resume cursor); ``account_seq`` is the per-account sequence number
when the schema has one (migration 0003_event_seq), else None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def event_from_row(row: Mapping[Any, Any]) -> dict[str, Any]:  # (Any keys: SQLAlchemy's RowMapping too)
    """An ``order_events`` row (column names as keys) as an event dict."""
    created = row["created_at"]
    if isinstance(created, str):
        created = datetime.fromisoformat(created)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    seq = row.get("account_seq")
    return {
        "sequence": int(row["id"]),
        "account_seq": None if seq is None else int(seq),
        "account": row["account_id"],
        "kind": row["kind"],
        "order_id": row["order_id"],
        "data": row["payload"],
        "created_at": created,
    }


def encode(event: Mapping[str, Any]) -> dict[str, str]:
    """Stream entry fields: the account and id stay readable for filtering, the rest is one JSON value."""
    body = {
        "sequence": event["sequence"],
        "account_seq": event["account_seq"],
        "account": event["account"],
        "kind": event["kind"],
        "order_id": event["order_id"],
        "data": event["data"],
        "created_at": event["created_at"].isoformat(),
    }
    return {"account": event["account"], "id": str(event["sequence"]), "event": json.dumps(body, separators=(",", ":"))}


def decode(fields: Mapping[bytes | str, bytes | str]) -> dict[str, Any]:
    raw = fields.get(b"event", fields.get("event"))  # type: ignore[call-overload]
    if raw is None:  # (json.loads(None) raised TypeError too, less clearly)
        raise TypeError("stream entry without an 'event' field")
    body = json.loads(raw)
    body["created_at"] = datetime.fromisoformat(body["created_at"])
    return body
