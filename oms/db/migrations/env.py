"""Alembic environment: migrations run against the connection the OMS hands over, or OMS_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from oms.db.engine import make_engine
from oms.db.models import Base
from oms.settings import get_settings

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or get_settings().database_url)
    with engine.connect() as new_connection:
        _run(new_connection)
    engine.dispose()
