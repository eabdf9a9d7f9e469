"""Idempotency-Key for REST writes: replay the first response, refuse reuse with a different body.

A key is claimed in its own short transaction (state ``running``) so a concurrent request with the same
key sees it and gets 409 instead of waiting. The write then marks the key ``done`` with its response in
the write's own transaction: the key's outcome and the write it protects commit together or not at all.
A claim whose process died is taken over after ``RUNNING_LEASE`` (the write then either committed, and
the key says ``done``, or rolled back and may run again). Keys live ``KEY_TTL`` (24 h), then are purged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from oms.api.problems import Problem
from oms.db.models import IdempotencyKey
from oms.service.uow import Database

KEY_TTL = timedelta(hours=24)
RUNNING_LEASE = timedelta(seconds=60)
MAX_KEY_LENGTH = 128
_table = IdempotencyKey.__table__


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """Hash of what the request asks for; JSON bodies are canonicalised so key order and spacing do not matter."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise Problem(400, "INVALID_IDEMPOTENCY_KEY", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return key


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def claim(database: Database, principal: str, key: str, fingerprint: str, now: datetime) -> StoredResponse | None:
    """Own ``key`` for this request (None) or learn what happened to it: a stored response to replay.

    Raises 422 when the key was used with another request, 409 while the first request is still running.
    """
    for _ in range(3):
        try:
            with database.engine.begin() as connection:
                connection.execute(
                    _table.insert(),
                    {
                        "principal": principal,
                        "key": key,
                        "fingerprint": fingerprint,
                        "state": "running",
                        "response_status": None,
                        "response_body": None,
                        "created_at": now,
                        "expires_at": now + KEY_TTL,
                    },
                )
            return None
        except IntegrityError:
            pass
        with database.engine.begin() as connection:
            row = connection.execute(
                select(_table.c.fingerprint, _table.c.state, _table.c.response_status, _table.c.response_body,
                       _table.c.created_at, _table.c.expires_at)
                .where((_table.c.principal == principal) & (_table.c.key == key))
            ).first()  # fmt: skip
            if row is None:
                continue  # purged between our insert and this read: try again
            stored_print, state, status, body, created_at, expires_at = row
            if _aware(expires_at) <= now:
                connection.execute(delete(_table).where((_table.c.principal == principal) & (_table.c.key == key)))
                continue
            if stored_print != fingerprint:
                raise Problem(422, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with a different request")
            if state == "done":
                return StoredResponse(int(status), dict(body))
            if _aware(created_at) + RUNNING_LEASE > now:
                raise Problem(409, "IDEMPOTENCY_KEY_IN_USE", "a request with this Idempotency-Key is still running",
                              headers={"Retry-After": "1"})  # fmt: skip
            taken = connection.execute(
                update(_table)
                .where((_table.c.principal == principal) & (_table.c.key == key) & (_table.c.created_at == created_at))
                .values(created_at=now)
            )
            if taken.rowcount == 1:
                return None
    raise Problem(409, "IDEMPOTENCY_KEY_IN_USE", "the Idempotency-Key is contended; retry", headers={"Retry-After": "1"})


def complete(connection: Connection, principal: str, key: str, response: StoredResponse) -> None:
    """Record the response inside the write's transaction; refuses if the claim was lost (the write rolls back)."""
    done = connection.execute(
        update(_table)
        .where((_table.c.principal == principal) & (_table.c.key == key) & (_table.c.state == "running"))
        .values(state="done", response_status=response.status, response_body=response.body)
    )
    if done.rowcount != 1:
        raise Problem(409, "IDEMPOTENCY_KEY_IN_USE", "the Idempotency-Key was taken over by another request")


def release(database: Database, principal: str, key: str) -> None:
    """Forget a claim whose request failed unexpectedly, so a retry may run it."""
    with database.engine.begin() as connection:
        connection.execute(
            delete(_table).where((_table.c.principal == principal) & (_table.c.key == key) & (_table.c.state == "running"))
        )


def purge_expired(database: Database, now: datetime) -> int:
    with database.engine.begin() as connection:
        return connection.execute(delete(_table).where(_table.c.expires_at < now)).rowcount
