"""Telling a database that cannot be reached apart from a command the database refused.

Background loops (the gateway's worker, outbox sender, reference-price writer) wait out the first and
retry; the second is a bug or bad data and gets a full traceback. A server restart or crash surfaces as
OperationalError or InterfaceError, or as a DBAPIError whose connection SQLAlchemy had to invalidate.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


def database_unavailable(error: BaseException) -> bool:
    """True when `error` says the database could not be reached (down, restarting, connection lost)."""
    if isinstance(error, (OperationalError, InterfaceError)):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def first_line(error: BaseException) -> str:
    """The error's first line: enough for a log line, without the driver's multi-line detail."""
    text = str(error).strip()
    return text.splitlines()[0] if text else repr(error)
