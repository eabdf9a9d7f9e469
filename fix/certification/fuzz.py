"""Hostile raw FIX for fuzzing an acceptor over its socket: Hypothesis strategies and one probe.

A probe logs on (ResetSeqNumFlag=Y), sends one mutated message, then a TestRequest, and reports what the
acceptor did: answered the TestRequest (alive), disconnected (allowed for garbage), or went silent while
still connected (a hang: the one outcome that fails). Mutations cover what engines meet in the wild:
tags dropped, duplicated or renumbered, values replaced by junk, huge fields, embedded SOH, wrong
BodyLength or CheckSum, raw bytes, and orders before logon.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from hypothesis import strategies as st

from fix.certification.runner import Predicate, ScriptRun, StepFailed, Target
from fix.certification.script import Script, Step
from fix.certification.wire import encode, utc_timestamp

ANSWER_WAIT_S = 2.0
JUNK_VALUES = ("", "-1", "0", "NaN", "Infinity", "1e309", "99999999999999999999999", "abc", "\x00", "=",
               "1.0000000001", " 10", "ÿÿ", "\x01", "9" * 400)


class Outcome(StrEnum):
    ALIVE = "alive"
    DISCONNECTED = "disconnected"
    HUNG = "hung"


@dataclass(frozen=True)
class Mutation:
    """One hostile message: `fields` (tag, value) after the standard header, plus framing overrides."""

    description: str
    fields: tuple[tuple[int, str], ...]
    body_length: str | None = None
    check_sum: str | None = None
    raw: bytes | None = None
    before_logon: bool = False


def order_fields(target: Target, cl_ord_id: str) -> list[tuple[int, str]]:
    fields = [(35, "D"), (11, cl_ord_id), (21, "1"), (55, target.symbol), (54, "1"), (38, target.qty),
              (40, "2"), (44, target.price), (59, "0"), (60, utc_timestamp())]
    if target.account:
        fields.insert(1, (1, target.account))
    return fields


@st.composite
def mutations(draw: st.DrawFn, target: Target) -> Mutation:
    cl_ord_id = "FZ" + draw(st.text("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=8, max_size=8))
    fields = order_fields(target, cl_ord_id)
    kind = draw(st.sampled_from(["drop", "duplicate", "junk_value", "random_tag", "huge", "soh", "body_length",
                                 "check_sum", "raw_bytes", "before_logon", "msg_type"]))
    index = draw(st.integers(min_value=1, max_value=len(fields) - 1))
    tag = fields[index][0]
    if kind == "drop":
        del fields[index]
        return Mutation(f"drop tag {tag}", tuple(fields))
    if kind == "duplicate":
        fields.insert(index, fields[index])
        return Mutation(f"duplicate tag {tag}", tuple(fields))
    if kind == "junk_value":
        value = draw(st.one_of(st.sampled_from(JUNK_VALUES),
                               st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=40)))
        fields[index] = (tag, value)
        return Mutation(f"tag {tag} = {value[:20]!r}", tuple(fields))
    if kind == "random_tag":
        new_tag = draw(st.integers(min_value=1, max_value=99999))
        fields.insert(index, (new_tag, draw(st.text("abc123", min_size=1, max_size=5))))
        return Mutation(f"extra tag {new_tag}", tuple(fields))
    if kind == "huge":
        size = draw(st.sampled_from([4096, 65536, 300_000]))
        fields[index] = (tag, "7" * size)
        return Mutation(f"tag {tag} of {size} bytes", tuple(fields))
    if kind == "soh":
        fields[index] = (tag, fields[index][1][:2] + "\x01" + fields[index][1][2:])
        return Mutation(f"SOH inside tag {tag}", tuple(fields))
    if kind == "body_length":
        value = draw(st.sampled_from(["0", "1", "-5", "x", "99999999", "12"]))
        return Mutation(f"BodyLength {value}", tuple(fields), body_length=value)
    if kind == "check_sum":
        value = draw(st.sampled_from(["000", "999", "abc", "1"]))
        return Mutation(f"CheckSum {value}", tuple(fields), check_sum=value)
    if kind == "raw_bytes":
        data = draw(st.binary(min_size=1, max_size=2048))
        return Mutation(f"{len(data)} random bytes", (), raw=data)
    if kind == "before_logon":
        return Mutation("order before logon", tuple(fields), before_logon=True)
    msg_type = draw(st.sampled_from(["", "ZZ", "D ", "8", "AE", "j", "3", "A"]))
    fields[0] = (35, msg_type)
    return Mutation(f"MsgType {msg_type!r}", tuple(fields))


_PROBE_SCRIPT = Script("fuzz", "fuzz probe", Path("<fuzz>"),
                       (Step("logon", (), 0, "logon"),))


def probe(target: Target, mutation: Mutation) -> Outcome:
    """Send one hostile message on a fresh session and classify how the acceptor took it."""
    run = ScriptRun(_PROBE_SCRIPT, target)
    try:
        if mutation.before_logon:
            run.connect("main")
        else:
            run.step_logon(())
        connection = run.connection
        if mutation.raw is not None:
            connection.send(mutation.raw)
        else:
            header = [(8, target.begin_string), (35, mutation.fields[0][1] if mutation.fields else "D"),
                      (49, target.sender), (56, target.target), (34, str(connection.next_seq)),
                      (52, utc_timestamp())]
            connection.next_seq += 1
            body = list(mutation.fields[1:])
            connection.send(encode(header + body, body_length=mutation.body_length,
                                   check_sum=mutation.check_sum))
        if mutation.before_logon:
            return Outcome.DISCONNECTED if connection.wait_closed(ANSWER_WAIT_S) else Outcome.HUNG
        test_id = "PROBE" + run.uid
        connection.send(encode([(8, target.begin_string), (35, "1"), (49, target.sender), (56, target.target),
                                (34, str(connection.next_seq)), (52, utc_timestamp()), (112, test_id)]))
        connection.next_seq += 1
        answer = connection.wait_for(Predicate(112, "=", test_id), ANSWER_WAIT_S)
        if answer is not None:
            return Outcome.ALIVE
        if connection.closed_by_peer or connection.wait_closed(1.0):
            return Outcome.DISCONNECTED
        # A gap (a mutated message the acceptor could not frame swallowed our sequence number) makes the
        # acceptor ask for a resend before it answers: that is a live session, not a hang.
        if connection.wait_for(Predicate(35, "=", "2"), 0.1) is not None:
            return Outcome.ALIVE
    finally:
        run.close_all()
    # Still connected and silent: the acceptor may legitimately be waiting for the bytes a BodyLength promised.
    # It has not hung as long as it serves the same session again once this connection is gone.
    return Outcome.ALIVE if _serves_again(target) else Outcome.HUNG


def _serves_again(target: Target) -> bool:
    run = ScriptRun(_PROBE_SCRIPT, target)
    try:
        run.step_logon(())
        test_id = "AGAIN" + run.uid
        connection = run.connection
        connection.send(encode([(8, target.begin_string), (35, "1"), (49, target.sender), (56, target.target),
                                (34, str(connection.next_seq)), (52, utc_timestamp()), (112, test_id)]))
        return connection.wait_for(Predicate(112, "=", test_id), ANSWER_WAIT_S) is not None
    except StepFailed:
        return False
    finally:
        run.close_all()

