"""The certification script language: one file per FIX session-level test case, readable by an auditor.

    # what this case proves
    case: 2b
    title: MsgSeqNum higher than expected is answered with a ResendRequest
    logon                           # connect, Logon with ResetSeqNumFlag=Y, expect the Logon reply
    send 35=1 112=GAP 34=+3         # 34=+N: skip N sequence numbers
    expect 35=2 7=2 16=0            # tag=value, tag~substring, tag? (present), tag! (absent)
    expect-disconnect within=3
    expect-silence 1                # nothing but heartbeats for 1 s (or: expect-silence 1 35=8)
    sendraw 8=FIX.4.4|9=5|35=0|10=000|    # bytes as written, | is SOH, no header added
    send 35=0 !10=bad               # !9= / !10= force BodyLength / CheckSum (bad: the right sum + 1)
    connect second / use second     # more connections; each keeps its own outgoing MsgSeqNum
    logout / close / wait 0.5

Values may use {sender} {target} {begin} {uid} {account} {symbol} {price} {qty} {other_account} {other_order}
{now} {now+30s} {now-300s}. `roles: gateway` limits a script to one kind of acceptor.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

STEP_KINDS = frozenset({"logon", "logout", "send", "sendraw", "expect", "expect-disconnect", "expect-silence",
                        "connect", "use", "close", "wait"})


class ScriptError(ValueError):
    """A script that cannot be run: the message names the file and line."""


@dataclass(frozen=True)
class Step:
    kind: str
    args: tuple[str, ...]
    line: int
    text: str


@dataclass(frozen=True)
class Script:
    case: str
    title: str
    path: Path
    steps: tuple[Step, ...]
    roles: frozenset[str] = field(default_factory=frozenset)


def _tokens(text: str) -> tuple[str, ...]:
    """Whitespace-separated, with shell-style quotes for values that hold spaces (58~\"too low\")."""
    return tuple(shlex.split(text))


def parse_script(text: str, path: Path) -> Script:
    case = title = ""
    roles: frozenset[str] = frozenset()
    steps: list[Step] = []
    for number, raw_line in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw_line).strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        if head == "case:":
            case = rest.strip()
        elif head == "title:":
            title = rest.strip()
        elif head == "roles:":
            roles = frozenset(rest.replace(",", " ").split())
        elif head in STEP_KINDS:
            try:
                args = (rest.strip(),) if head == "sendraw" else _tokens(rest)
            except ValueError as error:
                raise ScriptError(f"{path}:{number}: {error}") from None
            steps.append(Step(head, args, number, line))
        else:
            raise ScriptError(f"{path}:{number}: unknown step {head!r}")
    if not case or not title:
        raise ScriptError(f"{path}: a script needs 'case:' and 'title:'")
    if not steps:
        raise ScriptError(f"{path}: no steps")
    return Script(case, title, path, tuple(steps), roles)


def load_scripts(directory: Path) -> list[Script]:
    """Every `*.fixscript` under `directory`, in file-name order (file names start with the case number)."""
    return [parse_script(path.read_text(encoding="utf-8"), path) for path in sorted(directory.glob("*.fixscript"))]
