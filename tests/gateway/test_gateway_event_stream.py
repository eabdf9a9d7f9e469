"""With Redis configured, the gateway publishes every committed order event to the Redis Stream that REST
processes read, with contiguous per-account sequence numbers (so an API process sees at once what the
gateway process did)."""

from __future__ import annotations

import json

import pytest
import redis
from fixclient import is_er, new_order
from harness import eventually

from oms.events.publisher import STREAM
from oms.gateway import queries
from oms.gateway.gateway import Gateway

pytestmark = [pytest.mark.fix, pytest.mark.timeout(60)]


def test_gateway_publishes_committed_order_events_to_the_redis_stream(database, venue, gateway, connect,
                                                                      redis_url: str) -> None:
    stream = redis.Redis.from_url(redis_url)
    last = stream.xrevrange(STREAM, count=1)
    after = last[0][0] if last else b"0-0"
    gateway.stop()
    gateway.gateway = Gateway(gateway.settings, database, redis_url=redis_url).start()
    assert gateway.gateway.wait_venue(15)
    client = connect("CLIENT1")
    client.send("D", new_order("EV1", symbol="AAPL", side="1", qty="10", price="190.00", extra=[(1, "ACC1")]))
    client.wait_for(is_er("EV1", "F"))
    record = queries.order_by_client(database, "ACC1", "EV1")
    assert record is not None

    def events() -> list[dict[str, object]]:
        bodies = [json.loads(fields[b"event"]) for _, fields in stream.xrange(STREAM, min=b"(" + after)]
        return [body for body in bodies if body["order_id"] == record.id]

    eventually(lambda: {"order.new", "order.filled"} <= {str(e["kind"]) for e in events()})
    mine = events()
    sequences = [int(e["account_seq"]) for e in mine]  # type: ignore[call-overload]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    assert all(e["account"] == "ACC1" for e in mine)
