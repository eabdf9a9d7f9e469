"""Every run kept as a JSON document under ``<var_dir>/reconcile/runs``: what was compared, what broke, what was
repaired and which journal entry each repair booked. Operations list them (``oms reconcile runs``) and read one
back (``oms reconcile show RUN``); a repair's record is the link from its break to the ledger."""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUN_ID = re.compile(r"[0-9]{8}T[0-9]{12}Z-[0-9a-f]{6}")


class RunNotFound(Exception):
    """No stored run has that id."""


def runs_dir(var_dir: Path) -> Path:
    return var_dir / "reconcile" / "runs"


def save(directory: Path, document: dict[str, Any], now: datetime | None = None) -> str:
    """Write the run atomically (temp file, rename); returns its id (sortable by time)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    run_id = f"{moment:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"
    directory.mkdir(parents=True, exist_ok=True)
    stored = {"run_id": run_id, "ran_at": moment.isoformat(), **document}
    temporary = directory / f".{run_id}.json.tmp"
    temporary.write_text(json.dumps(stored, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, directory / f"{run_id}.json")
    return run_id


def load(directory: Path, run_id: str) -> dict[str, Any]:
    if not RUN_ID.fullmatch(run_id) or not (directory / f"{run_id}.json").is_file():
        raise RunNotFound(f"no reconciliation run {run_id!r} in {directory}")
    return json.loads((directory / f"{run_id}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def listing(directory: Path, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` runs, newest first."""
    if not directory.is_dir():
        return []
    names = sorted((p.name for p in directory.iterdir() if RUN_ID.fullmatch(p.stem)), reverse=True)[:limit]
    return [json.loads((directory / name).read_text(encoding="utf-8")) for name in names]
