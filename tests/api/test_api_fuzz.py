"""Property: whatever JSON a client sends to a write, the answer is never a 5xx, and every 4xx is a problem body.

(Our own bounded stand-in for running schemathesis against /openapi.json, which is not a dependency here.)
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Api

FIELDS = ["account", "symbol", "side", "type", "qty", "time_in_force", "limit_price", "stop_price", "expire_date",
          "client_order_id", "amount"]  # fmt: skip
GOOD_VALUES = {
    "symbol": ["AAPL", "BTCX", "NOPE"], "side": ["buy", "sell"], "type": ["market", "limit", "stop", "stop_limit"],
    "qty": ["1", "0.5", "0", "-1", "1e3", "1E+99", "NaN"], "time_in_force": ["day", "gtc", "ioc", "fok", "gtd"],
    "limit_price": ["190.00", "190.001", "0", "Infinity"], "stop_price": ["195.00", "-3"],
    "expire_date": ["2030-01-01", "1999-01-01", "soon"], "account": ["ALICE", "BOB", ""], "amount": ["5", "-5", "1e9"],
}  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
field_value = st.one_of(json_values, st.sampled_from([v for values in GOOD_VALUES.values() for v in values]))
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), field_value, max_size=9),
    st.fixed_dictionaries({name: st.sampled_from(GOOD_VALUES[name]) for name in ("symbol", "side", "type", "qty")},
                          optional={"limit_price": st.sampled_from(GOOD_VALUES["limit_price"]),
                                    "time_in_force": st.sampled_from(GOOD_VALUES["time_in_force"]),
                                    "expire_date": st.sampled_from(GOOD_VALUES["expire_date"])}),
    json_values,
)  # fmt: skip
targets = st.sampled_from(["/v1/orders", "/v1/accounts/ALICE/deposits", "/v1/accounts/ALICE/withdrawals", "/v1/orders/x/replace"])


def check(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == response.status_code and problem["code"]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
@given(path=targets, body=bodies)
def test_no_json_body_makes_a_write_fail_with_5xx(api: Api, path: str, body: Any) -> None:
    check(api.client.post(path, content=json.dumps(body), headers=api.headers() | {"content-type": "application/json"}))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
@given(
    params=st.dictionaries(
        st.sampled_from(["status", "symbol", "after", "until", "limit", "cursor", "account", "since", "order_id"]),
        st.text(max_size=30),
        max_size=4,
    ),
    path=st.sampled_from(["/v1/orders", "/v1/executions", "/v1/accounts/ALICE/statement"]),
)
def test_no_query_string_makes_a_read_fail_with_5xx(api: Api, params: dict[str, str], path: str) -> None:
    check(api.get(path, params=params))
