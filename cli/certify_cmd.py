"""``oms certify``: run the FIX session-level certification scripts against a live acceptor."""

from __future__ import annotations

from pathlib import Path

import click

from fix.certification.runner import Target, run_all, summary_table
from fix.certification.script import ScriptError, load_scripts
from oms.settings import get_settings

SCRIPTS_DIR = Path(__file__).resolve().parents[1] / "fix" / "certification" / "scripts"


def _logon_fields(username: str | None, password: str | None) -> tuple[tuple[int, str], ...]:
    fields: list[tuple[int, str]] = []
    if username:
        fields.append((553, username))
    if password:
        fields.append((554, password))
    return tuple(fields)


@click.command("certify")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=9880, show_default=True, help="The acceptor's port.")
@click.option("--begin-string", default="FIX.4.4", show_default=True)
@click.option("--sender", default="OMS", show_default=True, help="Our SenderCompID (the acceptor's target).")
@click.option("--target", default="EXCH", show_default=True, help="The acceptor's SenderCompID.")
@click.option("--role", type=click.Choice(["venue", "gateway"]), default="venue", show_default=True,
              help="Which scripts apply: some are only meaningful for one kind of acceptor.")
@click.option("--username", default=None, help="Username (553) sent on Logon.")
@click.option("--password", default=None, help="Password (554) sent on Logon (or OMS_CERTIFY_PASSWORD).")
@click.option("--account", default="CERT1", show_default=True, help="Account (1) on application messages.")
@click.option("--symbol", default="AAPL", show_default=True)
@click.option("--price", default="100.00", show_default=True, help="A passive limit price for the symbol.")
@click.option("--only", "only", multiple=True, help="Run only these case ids (repeatable), e.g. --only 2S-b.")
@click.option("--scripts", "scripts_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=SCRIPTS_DIR, show_default=False, help="Directory of *.fixscript files.")
def certify(host: str, port: int, begin_string: str, sender: str, target: str, role: str, username: str | None,
            password: str | None, account: str, symbol: str, price: str, only: tuple[str, ...],
            scripts_dir: Path) -> None:
    """Run every FIX session-level test case script and print a summary table; exit 1 if any fails."""
    if password is None:  # read by the settings loader, which knows every OMS_* name
        secret = get_settings().certify_password
        password = secret.get_secret_value() if secret is not None else None
    try:
        scripts = load_scripts(scripts_dir)
    except ScriptError as error:
        raise click.ClickException(str(error)) from None
    if only:
        unknown = set(only) - {script.case for script in scripts}
        if unknown:
            raise click.ClickException(f"unknown case id(s): {', '.join(sorted(unknown))}")
        scripts = [script for script in scripts if script.case in only]
    endpoint = Target(host, port, begin_string, sender, target, role,
                      logon_fields=_logon_fields(username, password), account=account, symbol=symbol, price=price)
    results = run_all(scripts, endpoint)
    click.echo(summary_table(results))
    failed = [result.case for result in results if not result.ok]
    passed = sum(1 for result in results if result.ok and not result.skipped)
    click.echo(f"\n{passed} passed, {len(failed)} failed, {sum(r.skipped for r in results)} skipped")
    if failed:
        raise click.exceptions.Exit(1)
