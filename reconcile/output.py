"""Rendering a run for people (summary and table) and machines (JSON document, CSV of breaks)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

from reconcile.runner import RunResult

CSV_COLUMNS = ("kind", "key", "exec_id", "account", "symbol", "ours", "venue", "line", "detail", "action")
TABLE_COLUMNS = ("kind", "exec_id", "account", "symbol", "venue", "ours", "action")
MAX_CELL = 48
MAX_TABLE_ROWS = 200  # a terminal is not the place for a million breaks


def summary_lines(result: RunResult) -> list[str]:
    comparison = result.comparison
    counts = Counter(b.kind.value for b in result.breaks)
    lines = [
        f"reconciliation {result.trade_date} against {result.source}: {result.report_rows} report rows, "
        f"{comparison.our_fills} fills of ours, {comparison.matched} matched",
    ]
    applied = [r for r in result.repairs if r.outcome == "applied"]
    if result.repairs:
        lines.append(f"repaired {len(applied)} of {len(result.repairs)} missed fills through the live fill path")
    if counts:
        lines.append("open breaks: " + ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())))
    else:
        lines.append("no open breaks")
    if result.ledger_violations:
        lines.append(f"ledger verify: {len(result.ledger_violations)} violations")
        lines.extend(f"  {v}" for v in result.ledger_violations)
    else:
        lines.append("ledger verify: clean")
    return lines


def table_lines(result: RunResult) -> list[str]:
    if not result.breaks:
        return []
    shown = result.breaks[:MAX_TABLE_ROWS]
    rows = [[_cell(value) for value in (b.kind.value, b.exec_id, b.account_id, b.symbol, b.venue, b.ours,
                                        result.comparison.note(b.key))] for b in shown]
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(TABLE_COLUMNS)]
    lines = ["  ".join(header.ljust(widths[i]) for i, header in enumerate(TABLE_COLUMNS)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)
    if len(result.breaks) > len(shown):
        lines.append(f"... and {len(result.breaks) - len(shown)} more breaks (all of them in --json/--csv and the stored run)")
    return lines


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def as_document(result: RunResult) -> dict[str, Any]:
    return {
        "trade_date": result.trade_date.isoformat(),
        "source": result.source,
        "report_rows": result.report_rows,
        "our_fills": result.comparison.our_fills,
        "matched": result.comparison.matched,
        "clean": result.clean,
        "breaks": [{**b.as_dict(), "action": result.comparison.note(b.key)} for b in result.breaks],
        "repairs": [
            {"break": r.break_key, "exec_id": r.exec_id, "account": r.account_id, "order_id": r.order_id,
             "outcome": r.outcome, "journal_entry_id": r.journal_entry_id, "detail": r.detail}
            for r in result.repairs
        ],
        "ledger_violations": list(result.ledger_violations),
    }


def write_json(result: RunResult, path: Path) -> None:
    path.write_text(json.dumps(as_document(result), indent=2) + "\n", encoding="utf-8")


def write_csv(result: RunResult, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for b in result.breaks:
            data = b.as_dict()
            writer.writerow([*("" if data[c] is None else data[c] for c in CSV_COLUMNS[:-1]),
                             result.comparison.note(b.key)])
