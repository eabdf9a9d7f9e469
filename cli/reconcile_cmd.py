"""``oms reconcile``: the nightly comparison of our books with the venue's trade report, and its stored runs.

Exit codes of a run: 0 clean, 1 breaks remain (or the ledger does not verify), 2 the run could not be done (bad
report, bad date or option, unreachable venue or database); with exit 2 nothing was booked.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import click
import psycopg
from sqlalchemy.exc import SQLAlchemyError

from cli.dates import parse_day
from oms.service.orders import ServiceConfig
from oms.service.uow import Database
from oms.settings import SettingsError, get_settings
from reconcile import output, runs
from reconcile.model import VenueTrade
from reconcile.progress import Ticker
from reconcile.report_file import ReportError
from reconcile.runner import RunResult, run, run_file

EXIT_CLEAN, EXIT_BREAKS, EXIT_BAD_INPUT = 0, 1, 2


class ReconcileInputError(click.ClickException):
    """The run cannot be done: one line on stderr, exit 2, nothing booked."""

    exit_code = EXIT_BAD_INPUT


def _settings():  # type: ignore[no-untyped-def]
    try:
        return get_settings()
    except SettingsError as error:
        raise ReconcileInputError(str(error)) from None


def _service_config() -> ServiceConfig:
    from_settings = getattr(ServiceConfig, "from_settings", None)
    return from_settings(_settings()) if from_settings is not None else ServiceConfig()


def _venue_rows(trade_date: date, sessions_cfg: Path | None, timeout_s: float) -> list[VenueTrade]:
    from reconcile.venue_fetch import VenueFetchError, fetch_trades

    try:
        return fetch_trades(sessions_cfg or _settings().sessions_cfg, trade_date, timeout_s=timeout_s)
    except VenueFetchError as error:
        raise ReconcileInputError(str(error)) from None


def _our_comp_id(sessions_cfg: Path) -> str | None:
    """Our CompID toward the venue, when sessions.cfg names the venue session; None: keep every row.

    Only a readable sessions.cfg without a venue session means "every row is ours": a missing or broken file
    stops the run (exit 2), as in every other command, instead of quietly turning the other-broker filter off.
    """
    from reconcile.venue_fetch import NoVenueSession, VenueFetchError, session_settings

    try:
        return session_settings(sessions_cfg).sender_comp_id
    except NoVenueSession:
        return None
    except VenueFetchError as error:
        raise ReconcileInputError(str(error)) from None


def _run_report(database: Database, trade_date: date, report: Path, comp_id: str | None, apply: bool,
                progress: bool | None) -> RunResult:
    """The report file, streamed (PostgreSQL) or read (SQLite); a ticker on stderr when wanted."""
    show = sys.stderr.isatty() if progress is None else progress
    ticker = Ticker(report.stat().st_size if report.is_file() else 0) if show else None
    try:
        return run_file(database, trade_date, report, comp_id=comp_id, apply=apply, config=_service_config(),
                        progress=ticker)
    finally:
        if ticker is not None and ticker.read:
            ticker.done()


def _ours_only(rows: list[VenueTrade], comp_id: str | None) -> tuple[list[VenueTrade], int]:
    """The simulator's CSV lists every broker's executions: reconcile ours only."""
    if comp_id is None:
        return rows, 0
    kept = [row for row in rows if row.broker_comp_id == comp_id]
    return kept, len(rows) - len(kept)


@click.group("reconcile", invoke_without_command=True)
@click.option("--date", "trade_date", callback=parse_day, help="Trade date, YYYY-MM-DD (required for a run).")
@click.option("--report", "report", type=click.Path(path_type=Path, dir_okay=False),
              help="The venue's CSV trade report for that date.")
@click.option("--from-venue", is_flag=True, help="Fetch TradeCaptureReports over FIX instead of reading a file.")
@click.option("--sessions-cfg", type=click.Path(path_type=Path, dir_okay=False),
              help="sessions.cfg naming the venue session (default: OMS_SESSIONS_CFG).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(1, 600), default=30.0, show_default=True,
              help="Seconds to wait for the venue (--from-venue).")
@click.option("--comp-id", help="Our CompID at the venue: report rows of other brokers are skipped "
                                "(default: SenderCompID of the venue session in sessions.cfg).")
@click.option("--apply", "apply", is_flag=True, help="Book the missed fills that are safe to book.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the run as JSON to this file.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Write the breaks as CSV to this file.")
@click.option("--progress/--no-progress", "progress", default=None,
              help="Show progress of the report read on stderr (default: when stderr is a terminal).")
@click.option("--format", "file_format", type=click.Choice(["json", "csv"]), help="With --output: the file's format.")
@click.option("--output", "output_path", type=click.Path(path_type=Path), help="With --format: where to write.")
@click.pass_context
def reconcile(ctx: click.Context, trade_date: date | None, report: Path | None, from_venue: bool,
              sessions_cfg: Path | None, timeout_s: float, comp_id: str | None, apply: bool, json_path: Path | None,
              csv_path: Path | None, progress: bool | None, file_format: str | None, output_path: Path | None) -> None:
    """Compare the venue's trades of --date with our executions and ledger; list the breaks.

    \b
    Nightly, after the venue's end of day:
      oms reconcile --date 2026-11-20 --report trades.csv --apply --json run.json
    """
    if ctx.invoked_subcommand is not None:
        return
    if trade_date is None:
        raise ReconcileInputError("--date YYYY-MM-DD is required")
    today = datetime.now(UTC).date()  # trade dates here are the venue's, in UTC (reconcile.loader)
    if trade_date > today:  # nothing has traded yet: a 'clean' run would only hide the day really meant
        raise ReconcileInputError(f"--date {trade_date.isoformat()} is in the future (today is {today.isoformat()}, UTC)")
    if (report is None) == (not from_venue):
        raise ReconcileInputError("give exactly one of --report FILE or --from-venue")
    if (file_format is None) != (output_path is None):
        raise ReconcileInputError("--format and --output go together")
    json_option, csv_option = "--json", "--csv"
    if file_format == "json" and json_path is None:
        json_path, json_option = output_path, "--output"
    elif file_format == "csv" and csv_path is None:
        csv_path, csv_option = output_path, "--output"
    outputs = [(json_path, json_option, output.write_json), (csv_path, csv_option, output.write_csv)]
    from cli.output_files import check_writable  # late: cli.main imports this module

    for path, option, _ in outputs:
        check_writable(path, option)  # opened for real: os.access says yes to /proc or a read-only mount
    settings = _settings()
    from cli.main import CliError, existing_database

    try:
        existing_database(settings.database_url)
    except CliError as error:  # exit 2 here: the run could not be done (1 would say "breaks remain")
        raise ReconcileInputError(error.message) from None
    ours = comp_id or _our_comp_id(sessions_cfg or settings.sessions_cfg)
    try:
        database = Database.from_url(settings.database_url)
        try:
            if report is not None:
                result = _run_report(database, trade_date, report, ours, apply, progress)
            else:
                rows = _venue_rows(trade_date, sessions_cfg, timeout_s)
                rows, skipped = _ours_only(rows, ours)
                source = "the venue (TradeCaptureReports)" + (
                    f" ({skipped} rows of other brokers skipped)" if skipped else "")
                result = run(database, trade_date, rows, source=source, apply=apply, config=_service_config())
        finally:
            database.dispose()
    except ReportError as error:
        raise ReconcileInputError(str(error)) from None
    except (SQLAlchemyError, psycopg.Error) as error:
        detail = " ".join(str(getattr(error, "orig", error)).split())
        raise ReconcileInputError(f"database error: {type(error).__name__}: {detail}") from None
    document = output.as_document(result)
    run_id = _store(settings.var_dir, document)
    for line in output.summary_lines(result):
        click.echo(line)
    table = output.table_lines(result)
    if table:
        click.echo("")
        for line in table:
            click.echo(line)
    if run_id:
        click.echo(f"\nrun {run_id} stored (oms reconcile show {run_id})")
    written = _write(result, outputs)
    ctx.exit(EXIT_CLEAN if result.clean and written else EXIT_BREAKS)


def _write(result: RunResult, outputs: Sequence[tuple[Path | None, str, Callable[[RunResult, Path], None]]]) -> bool:
    """The output files, checked before the run; one that fails now (a full disk) is one line, never a traceback."""
    written = True
    for path, option, write in outputs:
        if path is None:
            continue
        try:
            write(result, path)
        except OSError as error:
            click.echo(f"Error: {option} {path}: not written ({error.strerror or error})", err=True)
            written = False
    return written


def _store(var_dir: Path, document: dict) -> str | None:  # type: ignore[type-arg]
    """Keep the run; a full disk must not hide the result of a run that already booked repairs."""
    try:
        return runs.save(runs.runs_dir(var_dir), document)
    except OSError as error:
        click.echo(f"warning: run not stored under {var_dir}: {error.strerror or error}", err=True)
        return None


@reconcile.command("runs")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
def reconcile_runs(limit: int) -> None:
    """The latest stored runs, newest first."""
    stored = runs.listing(runs.runs_dir(_settings().var_dir), limit)
    if not stored:
        click.echo("no reconciliation runs stored")
        return
    for item in stored:
        state = "clean" if item.get("clean") else f"{len(item.get('breaks', []))} open breaks"
        click.echo(f"{item['run_id']}  date {item['trade_date']}  {item['report_rows']} rows  "
                   f"{len(item.get('repairs', []))} repairs  {state}  ({item['source']})")


@reconcile.command("show")
@click.argument("run_id")
def reconcile_show(run_id: str) -> None:
    """Print one stored run as JSON."""
    try:
        click.echo(json.dumps(runs.load(runs.runs_dir(_settings().var_dir), run_id), indent=2))
    except runs.RunNotFound as error:
        raise ReconcileInputError(str(error)) from None
