"""End-of-day snapshots of the venue's state, so a restart replays one day of journal instead of all of them.

The journal alone rebuilds everything (the engine is deterministic), but it only grows: the market maker
journals a replace per quote per step, about 1.2 million commands a day at the default interval, so a
simulator left running for weeks would take minutes to start. After each end of day the venue pickles the
engine and the ExecID index together with the journal's length at that moment (the snapshot covers exactly
those bytes), and a restart loads it and replays only the journal after it.

A snapshot is an optimisation, never the record: the journal stays complete. One that cannot be used (an
unreadable file, one written by different engine code or for other instruments or fees, a journal shorter
than the snapshot says, not ending a line there or holding other commands before that point) is ignored
with a warning, and the whole journal is replayed as before. The file is written to a temporary name,
fsynced and renamed, so a crash leaves the old snapshot or the new one, never half of one. Pickle is used
because both objects are plain Python and it restores them exactly; the file is the venue's own, next to
its journal, and is trusted as the journal is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path

from exchange.engine import EndOfDay, MatchingEngine
from exchange.journal import Journal
from exchange.trade_report import ExecIdIndex

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1
_FINGERPRINT_BYTES = 4096
_EXCHANGE_DIR = Path(__file__).resolve().parent
# The modules whose classes a snapshot holds: a change to any of them may change what pickle restores.
_PICKLED_MODULES = (*sorted((_EXCHANGE_DIR / "engine").glob("*.py")), _EXCHANGE_DIR / "trade_report.py",
                    _EXCHANGE_DIR / "instruments.py", Path(__file__).resolve())  # fmt: skip


@cache
def code_fingerprint() -> str:
    """A digest of the source of every module a snapshot's objects come from."""
    digest = hashlib.sha256()
    for path in _PICKLED_MODULES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def engine_settings(engine: MatchingEngine) -> tuple[object, ...]:
    """What the venue's configuration decides about an engine (instruments, fee rate): a snapshot taken under
    other settings is not used, since a full replay under the new ones would give a different engine."""
    return tuple(sorted(engine.instruments.items())), engine.fee_rate


@dataclass(frozen=True)
class Snapshot:
    """The venue's replayable state after the first ``journal_bytes`` bytes of its journal."""

    journal_bytes: int
    journal_check: str  # journal_fingerprint() of those bytes when the snapshot was taken
    last_command_at: datetime | None
    last_closed: date | None  # trade date of the last end of day
    engine: MatchingEngine
    index: ExecIdIndex


def journal_fingerprint(journal_path: Path, length: int) -> str:
    """A digest of the first and the last 4 KiB of the journal's first ``length`` bytes: cheap to read, and
    different for a journal that was replaced since (its first commands carry other timestamps)."""
    digest = hashlib.sha256(str(length).encode())
    if length:
        with open(journal_path, "rb") as handle:
            digest.update(handle.read(min(length, _FINGERPRINT_BYTES)))
            handle.seek(max(0, length - _FINGERPRINT_BYTES))
            digest.update(handle.read(min(length, _FINGERPRINT_BYTES)))
    return digest.hexdigest()


def snapshot_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.stem + ".snapshot")


def save(path: Path, snapshot: Snapshot) -> None:
    """Write ``snapshot`` atomically (temporary file, fsync, rename, fsync of the directory)."""
    record = {"format": SNAPSHOT_FORMAT, "code": code_fingerprint(), "settings": engine_settings(snapshot.engine),
              "snapshot": snapshot}  # fmt: skip
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        pickle.dump(record, handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def take(journal: Journal, day_end: EndOfDay, engine: MatchingEngine, index: ExecIdIndex) -> Snapshot:
    """Save the state right after ``day_end`` (the caller holds the engine lock, so nothing is journaled
    meanwhile) beside ``journal``, covering all of the journal so far, which is made durable first."""
    covered = journal.durable_size()
    taken = Snapshot(covered, journal_fingerprint(journal.path, covered), day_end.timestamp, day_end.trade_date,
                     engine, index)
    save(snapshot_path(journal.path), taken)
    return taken


def load(path: Path, journal_path: Path, fresh_engine: MatchingEngine) -> Snapshot | None:
    """The snapshot at ``path`` if it can stand in for replaying the journal up to its mark, else None.

    ``fresh_engine`` is an engine built from the current configuration (only its settings are compared)."""
    if not path.exists():
        return None
    try:
        with open(path, "rb") as handle:
            record = pickle.load(handle)
        snapshot = record["snapshot"]
        reason = _unusable(record, snapshot, journal_path, fresh_engine)
    except Exception as exc:  # any unreadable snapshot: the journal is the record, replay it all
        reason = f"unreadable ({type(exc).__name__}: {exc})"
    if reason is not None:
        log.warning("snapshot %s not used, replaying the whole journal: %s", path, reason)
        return None
    return snapshot  # type: ignore[no-any-return]


def _unusable(record: dict[str, object], snapshot: Snapshot, journal_path: Path,
              fresh_engine: MatchingEngine) -> str | None:
    if record.get("format") != SNAPSHOT_FORMAT:
        return f"format {record.get('format')!r}, expected {SNAPSHOT_FORMAT}"
    if record.get("code") != code_fingerprint():
        return "written by different engine code"
    if record.get("settings") != engine_settings(fresh_engine):
        return "taken under other instruments or fee rate"
    if not isinstance(snapshot, Snapshot):
        return "not a snapshot"
    size = journal_path.stat().st_size if journal_path.exists() else 0
    if size < snapshot.journal_bytes:
        return f"the journal has {size} bytes, the snapshot covers {snapshot.journal_bytes}"
    if snapshot.journal_bytes:
        with open(journal_path, "rb") as handle:
            handle.seek(snapshot.journal_bytes - 1)
            if handle.read(1) != b"\n":
                return f"the journal does not end a line at byte {snapshot.journal_bytes}"
    if journal_fingerprint(journal_path, snapshot.journal_bytes) != snapshot.journal_check:
        return "the journal's first or last commands before the mark are not the ones the snapshot saw"
    return None
