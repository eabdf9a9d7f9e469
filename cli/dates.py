"""The one ``--date`` parser of every command: exactly YYYY-MM-DD, anything else is bad usage (exit 2)."""

from __future__ import annotations

from datetime import date

import click

from oms.settings import parse_iso_day


def parse_day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    """Click callback for a ``--date`` option (None when the option is not given)."""
    if value is None:
        return None
    try:
        return parse_iso_day(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
