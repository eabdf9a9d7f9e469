"""``oms api`` (serve the REST facade) and ``oms api-keys`` (create and revoke API keys)."""

from __future__ import annotations

import click

from cli.main import CliError, existing_database, friendly_errors, open_database
from oms.settings import get_settings


def _service_config() -> object:
    """The order path's parameters (fees, calendar, settlement, order rate) exactly as the gateway uses them."""
    from oms.service.orders import ServiceConfig

    return ServiceConfig.from_settings(get_settings())


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--rate", default=200.0, show_default=True, type=click.FloatRange(0), help="Requests per second per API key (0: no limit).")
@click.option("--burst", default=400, show_default=True, type=click.IntRange(1), help="Burst size per API key.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="uvicorn worker processes (each its own group commit; rate limits shared only through Redis).")  # fmt: skip
@click.option("--no-event-tailer", is_flag=True,
              help="Do not tail order_events into the Redis Stream (when every writer publishes with on_commit).")  # fmt: skip
@friendly_errors
def api(host: str, port: int, rate: float, burst: int, workers: int, no_event_tailer: bool) -> None:
    """Serve the REST API (OpenAPI document at /openapi.json) on HOST:PORT with uvicorn."""
    import os

    import uvicorn

    existing_database(get_settings().database_url)  # the API does not migrate: a missing SQLite file is a typo
    if workers > 1:
        from oms.api.serve import BURST_ENV, RATE_ENV, TAIL_ENV

        os.environ[RATE_ENV], os.environ[BURST_ENV] = str(rate), str(burst)
        os.environ[TAIL_ENV] = "0" if no_event_tailer else "1"
        get_settings()  # a bad setting fails here, once, with a one-line message
        uvicorn.run("oms.api.serve:app_from_environment", factory=True, host=host, port=port, workers=workers, log_level="warning")
        return

    from oms.api.app import ApiSettings, create_app
    from oms.api.ratelimit import RateLimit

    settings = get_settings()
    app = create_app(
        ApiSettings(database_url=settings.database_url, redis_url=settings.redis_url, rate_limit=RateLimit(rate, burst)),
        config=_service_config(),  # type: ignore[arg-type]
        tail_events=not no_event_tailer,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


@click.group("api-keys")
def api_keys() -> None:
    """REST API keys (stored hashed; shown once)."""


@api_keys.command("create")
@click.argument("accounts", nargs=-1, required=True)
@click.option("--scope", "scopes", multiple=True, type=click.Choice(["read", "trade", "fund", "admin"]),
              help="Repeat for several; default read and trade.")  # fmt: skip
@click.option("--label", help="A note for operators (who the key is for).")
@friendly_errors
def api_keys_create(accounts: tuple[str, ...], scopes: tuple[str, ...], label: str | None) -> None:
    """Create a key for ACCOUNTS; prints the key alone on stdout (it is never shown again)."""
    from oms.api.keys import DEFAULT_SCOPES, ApiKeyError, Scope, create_api_key

    try:
        key = create_api_key(open_database(), accounts, [Scope(s) for s in scopes] or DEFAULT_SCOPES, label=label)
    except ApiKeyError as error:
        raise CliError(str(error)) from None
    click.echo(key)


@api_keys.command("revoke")
@click.argument("key_id")
@friendly_errors
def api_keys_revoke(key_id: str) -> None:
    """Revoke the key whose id is KEY_ID (the part after ``omsk_`` and before the next ``_``)."""
    from oms.api.keys import ApiKeyError, revoke_api_key

    try:
        revoke_api_key(open_database(), key_id)
    except ApiKeyError as error:
        raise CliError(str(error)) from None
    click.echo(f"revoked {key_id}")
