"""The app as uvicorn worker processes build it: from the environment (``oms api --workers N``)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from oms.api.app import ApiSettings, create_app
from oms.api.ratelimit import RateLimit
from oms.settings import get_settings

RATE_ENV = "REST_API_RATE"  # not OMS_*: the settings loader refuses names it does not know
BURST_ENV = "REST_API_BURST"
TAIL_ENV = "REST_API_TAIL_EVENTS"


def app_from_environment() -> FastAPI:
    """One worker's app: the OMS settings plus the rate limit ``oms api`` put in the environment."""
    from oms.service.orders import ServiceConfig

    settings = get_settings()
    limit = RateLimit(float(os.environ.get(RATE_ENV, "200")), int(os.environ.get(BURST_ENV, "400")))
    return create_app(
        ApiSettings(database_url=settings.database_url, redis_url=settings.redis_url, rate_limit=limit),
        config=ServiceConfig.from_settings(settings),
        tail_events=os.environ.get(TAIL_ENV, "1") != "0",
    )
