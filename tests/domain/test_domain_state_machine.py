"""The transition table tested as a table: every legal row written out here, expected result last."""

from __future__ import annotations

import itertools

import pytest

from oms.domain.enums import OrderStatus
from oms.domain.errors import IllegalTransition
from oms.domain.state_machine import RESUME, TRANSITIONS, OrderEventKind, fill_kind, transition

S = OrderStatus
K = OrderEventKind
PREV = "previous"  # marker: the row resumes the working status held before the request

LEGAL = [
    (S.PENDING_NEW, K.SUBMITTED, S.PENDING_NEW),
    (S.PENDING_NEW, K.NEW_PENDING, S.PENDING_NEW),
    (S.PENDING_NEW, K.DENIED, S.REJECTED),
    (S.PENDING_NEW, K.ACCEPTED, S.NEW),
    (S.PENDING_NEW, K.REJECTED, S.REJECTED),
    (S.PENDING_NEW, K.FILLED_PARTIALLY, S.PARTIALLY_FILLED),
    (S.PENDING_NEW, K.FILLED, S.FILLED),
    (S.PENDING_NEW, K.CANCEL_REQUESTED, S.PENDING_CANCEL),
    (S.PENDING_NEW, K.CANCELED, S.CANCELED),
    (S.PENDING_NEW, K.EXPIRED, S.EXPIRED),
    (S.NEW, K.FILLED_PARTIALLY, S.PARTIALLY_FILLED),
    (S.NEW, K.FILLED, S.FILLED),
    (S.NEW, K.CANCEL_REQUESTED, S.PENDING_CANCEL),
    (S.NEW, K.REPLACE_REQUESTED, S.PENDING_REPLACE),
    (S.NEW, K.CANCELED, S.CANCELED),
    (S.NEW, K.EXPIRED, S.EXPIRED),
    (S.NEW, K.DONE_FOR_DAY, S.DONE_FOR_DAY),
    (S.NEW, K.RESTATED, S.NEW),
    (S.PARTIALLY_FILLED, K.ACCEPTED, S.PARTIALLY_FILLED),
    (S.PARTIALLY_FILLED, K.FILLED_PARTIALLY, S.PARTIALLY_FILLED),
    (S.PARTIALLY_FILLED, K.FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, K.CANCEL_REQUESTED, S.PENDING_CANCEL),
    (S.PARTIALLY_FILLED, K.REPLACE_REQUESTED, S.PENDING_REPLACE),
    (S.PARTIALLY_FILLED, K.CANCELED, S.CANCELED),
    (S.PARTIALLY_FILLED, K.EXPIRED, S.EXPIRED),
    (S.PARTIALLY_FILLED, K.DONE_FOR_DAY, S.DONE_FOR_DAY),
    (S.PARTIALLY_FILLED, K.RESTATED, S.PARTIALLY_FILLED),
    (S.PENDING_CANCEL, K.CANCEL_PENDING, S.PENDING_CANCEL),
    (S.PENDING_CANCEL, K.NEW_PENDING, S.PENDING_CANCEL),
    (S.PENDING_CANCEL, K.ACCEPTED, S.PENDING_CANCEL),
    (S.PENDING_CANCEL, K.REJECTED, S.REJECTED),
    (S.PENDING_CANCEL, K.FILLED_PARTIALLY, S.PENDING_CANCEL),
    (S.PENDING_CANCEL, K.FILLED, S.FILLED),
    (S.PENDING_CANCEL, K.CANCELED, S.CANCELED),
    (S.PENDING_CANCEL, K.CANCEL_REJECTED, PREV),
    (S.PENDING_CANCEL, K.EXPIRED, S.EXPIRED),
    (S.PENDING_CANCEL, K.DONE_FOR_DAY, S.DONE_FOR_DAY),
    (S.PENDING_CANCEL, K.RESTATED, S.PENDING_CANCEL),
    (S.PENDING_REPLACE, K.REPLACE_PENDING, S.PENDING_REPLACE),
    (S.PENDING_REPLACE, K.FILLED_PARTIALLY, S.PENDING_REPLACE),
    (S.PENDING_REPLACE, K.FILLED, S.FILLED),
    (S.PENDING_REPLACE, K.REPLACED, S.REPLACED),
    (S.PENDING_REPLACE, K.REPLACE_REJECTED, PREV),
    (S.PENDING_REPLACE, K.CANCELED, S.CANCELED),
    (S.PENDING_REPLACE, K.EXPIRED, S.EXPIRED),
    (S.PENDING_REPLACE, K.DONE_FOR_DAY, S.DONE_FOR_DAY),
    (S.PENDING_REPLACE, K.RESTATED, S.PENDING_REPLACE),
    (S.FILLED, K.CANCEL_REJECTED, S.FILLED),
    (S.FILLED, K.REPLACE_REJECTED, S.FILLED),
    (S.CANCELED, K.CANCEL_REJECTED, S.CANCELED),
    (S.CANCELED, K.REPLACE_REJECTED, S.CANCELED),
    (S.EXPIRED, K.CANCEL_REJECTED, S.EXPIRED),
    (S.EXPIRED, K.REPLACE_REJECTED, S.EXPIRED),
    (S.DONE_FOR_DAY, K.CANCEL_REJECTED, S.DONE_FOR_DAY),
    (S.DONE_FOR_DAY, K.REPLACE_REJECTED, S.DONE_FOR_DAY),
    (S.REJECTED, K.CANCEL_REJECTED, S.REJECTED),
]

ILLEGAL_SAMPLE = [
    (S.FILLED, K.FILLED),
    (S.FILLED, K.FILLED_PARTIALLY),
    (S.CANCELED, K.ACCEPTED),
    (S.CANCELED, K.FILLED),
    (S.REJECTED, K.FILLED),
    (S.REJECTED, K.ACCEPTED),
    (S.EXPIRED, K.FILLED_PARTIALLY),
    (S.REPLACED, K.FILLED),
    (S.REPLACED, K.CANCEL_REQUESTED),
    (S.DONE_FOR_DAY, K.ACCEPTED),
    (S.NEW, K.ACCEPTED),
    (S.NEW, K.SUBMITTED),
    (S.NEW, K.CANCEL_REJECTED),
    (S.NEW, K.REPLACED),
    (S.PENDING_NEW, K.REPLACE_REQUESTED),
    (S.PENDING_CANCEL, K.CANCEL_REQUESTED),
    (S.PENDING_CANCEL, K.REPLACE_REQUESTED),
    (S.PENDING_REPLACE, K.CANCEL_REQUESTED),
    (S.PENDING_REPLACE, K.ACCEPTED),
    (S.PARTIALLY_FILLED, K.DENIED),
]


@pytest.mark.parametrize(("status", "kind", "expected"), LEGAL)
def test_legal_transition(status: OrderStatus, kind: OrderEventKind, expected: object) -> None:
    if expected == PREV:
        assert TRANSITIONS[(status, kind)] is RESUME
        for previous in (S.NEW, S.PARTIALLY_FILLED):
            assert transition(status, kind, previous) is previous
    else:
        assert transition(status, kind) is expected


def test_table_has_exactly_the_rows_listed_here() -> None:
    listed = {(status, kind) for status, kind, _ in LEGAL}
    assert listed == set(TRANSITIONS)
    assert len(listed) == len(LEGAL)


@pytest.mark.parametrize(("status", "kind"), ILLEGAL_SAMPLE)
def test_illegal_transition_refused(status: OrderStatus, kind: OrderEventKind) -> None:
    with pytest.raises(IllegalTransition) as caught:
        transition(status, kind)
    assert caught.value.from_status is status and caught.value.kind is kind
    assert str(caught.value) == f"illegal transition: {status.name} + {kind.name}"


def test_every_unlisted_pair_is_illegal() -> None:
    for status, kind in itertools.product(OrderStatus, OrderEventKind):
        if (status, kind) not in TRANSITIONS:
            with pytest.raises(IllegalTransition):
                transition(status, kind)


def test_replaced_has_no_way_out() -> None:
    assert not any(status is S.REPLACED for status, _ in TRANSITIONS)


@pytest.mark.parametrize("previous", [None, S.FILLED, S.PENDING_CANCEL])
def test_resume_needs_a_working_previous_status(previous: OrderStatus | None) -> None:
    with pytest.raises(IllegalTransition, match="cannot resume"):
        transition(S.PENDING_CANCEL, K.CANCEL_REJECTED, previous)


def test_terminal_statuses_only_accept_late_request_rejects() -> None:
    for (status, kind), target in TRANSITIONS.items():
        if status.is_terminal:
            assert kind in (K.CANCEL_REJECTED, K.REPLACE_REJECTED) and target is status


@pytest.mark.parametrize(
    ("cum_after", "qty", "expected"),
    [("40", "100", K.FILLED_PARTIALLY), ("100", "100", K.FILLED), ("0.5", "0.5", K.FILLED)],
)
def test_fill_kind_completes_to_filled(cum_after: str, qty: str, expected: OrderEventKind) -> None:
    from decimal import Decimal

    assert fill_kind(Decimal(cum_after), Decimal(qty)) is expected
