"""Deposits and withdrawals move whole minor units of the account's currency: no fraction of a cent is booked."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api


@pytest.mark.parametrize("path", ["deposits", "withdrawals"])
@pytest.mark.parametrize("amount", ["0.001", "10.005", "0.000000000001"])
def test_an_amount_finer_than_a_cent_is_refused_and_nothing_is_booked(api: Api, path: str, amount: str) -> None:
    before = api.get("/v1/accounts/ALICE/balances").json()
    response = api.post(f"/v1/accounts/ALICE/{path}", {"amount": amount})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "INVALID_AMOUNT"
    assert api.get("/v1/accounts/ALICE/balances").json() == before


def test_trailing_zeros_within_the_currency_are_fine(api: Api) -> None:
    response = api.post("/v1/accounts/ALICE/deposits", {"amount": "10.500"})
    assert response.status_code == 201, response.text
