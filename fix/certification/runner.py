"""Runs certification scripts against a live FIX acceptor over TCP and records what was expected and seen.

The runner is deliberately not a FIX engine: it tracks only its own outgoing MsgSeqNum per connection and
fills the standard header unless a script says otherwise, so scripts can break every rule on purpose.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from fix.certification.script import Script, ScriptError, Step
from fix.certification.wire import FrameReader, Message, encode, utc_timestamp

HEADER_ORDER = (35, 49, 56, 34, 52)
OTHER_HEADER_TAGS = frozenset({43, 50, 57, 97, 115, 116, 122, 128, 129, 142, 143, 369, 627})
DEFAULT_WAIT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
# The TLS handshake gets its own, longer limit than the TCP connect: the connect completes in the kernel's
# listen queue, the handshake needs the TLS front (stunnel) itself to answer.
TLS_HANDSHAKE_TIMEOUT_S = 10.0
# A handshake that times out is tried once more on a new connection, as a FIX initiator reconnects. In CI a
# connection made just as the previous session closed got no ServerHello at all (stunnel logged it accepted,
# then nothing until the client gave up); the cause is not found, and the next connection works.
TLS_HANDSHAKE_ATTEMPTS = 2
_NOW = re.compile(r"\{now(?:([+-])(\d+)s)?\}")


@dataclass(frozen=True)
class Target:
    """The acceptor under test and the identity the scripts use towards it."""

    host: str
    port: int
    begin_string: str = "FIX.4.4"
    sender: str = "OMS"
    target: str = "EXCH"
    role: str = "venue"
    heartbeat_s: int = 30
    logon_fields: tuple[tuple[int, str], ...] = ()
    account: str = "CERT1"
    symbol: str = "AAPL"
    price: str = "100.00"
    qty: str = "10"
    other_account: str = ""  # an account this identity must never reach (gateway security scripts)
    other_order: str = ""  # a ClOrdID of that account's working order
    tls_ca: Path | None = None  # connect with TLS, trusting this CA file (e.g. the stunnel front's cert)


@dataclass(frozen=True)
class StepResult:
    step: str
    expected: str
    seen: str
    ok: bool


@dataclass
class ScriptResult:
    case: str
    title: str
    steps: list[StepResult] = field(default_factory=list)
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.skipped or all(step.ok for step in self.steps)

    @property
    def failure(self) -> StepResult | None:
        return next((step for step in self.steps if not step.ok), None)


class StepFailed(Exception):
    def __init__(self, expected: str, seen: str) -> None:
        super().__init__(expected)
        self.expected = expected
        self.seen = seen


def _connect(host: str, port: int, tls_ca: Path | None) -> socket.socket:
    """A TCP connection, with TLS (trusting ``tls_ca``) when given one."""
    for attempt in range(1, TLS_HANDSHAKE_ATTEMPTS + 1):
        plain = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        if tls_ca is None:
            return plain
        context = ssl.create_default_context(cafile=str(tls_ca))
        plain.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
        try:
            return context.wrap_socket(plain, server_hostname=host)
        except TimeoutError:
            plain.close()
            if attempt == TLS_HANDSHAKE_ATTEMPTS:
                raise
        except (ssl.SSLError, OSError):
            plain.close()
            raise
    raise AssertionError("unreachable")


class Connection:
    """One TCP connection: a reader thread appends decoded messages; steps consume them."""

    def __init__(self, host: str, port: int, tls_ca: Path | None = None) -> None:
        self.socket: socket.socket = _connect(host, port, tls_ca)
        self.socket.settimeout(0.2)
        # An OpenSSL connection must not be read and written by two threads at once (with TLS 1.3 the
        # reader may be taking the server's session tickets while a write goes out: seen as a Logon that
        # never reached stunnel's backend). Every recv and send on the socket holds this lock.
        self._io_lock = threading.Lock()
        self.next_seq = 1
        self.messages: list[Message] = []
        self.consumed: set[int] = set()
        self.closed_by_peer = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True, name="cert-reader")
        self._stopping = False
        self._reader.start()

    def _read(self) -> None:
        frames = FrameReader()
        while not self._stopping:
            try:
                data = self._receive()
            except (TimeoutError, ssl.SSLWantReadError):
                continue
            except (OSError, ValueError):  # ValueError: closed under us by close()
                data = b""
            with self._cond:
                if not data:
                    self.closed_by_peer = not self._stopping
                    self._cond.notify_all()
                    break
                self.messages.extend(frames.feed(data))
                self._cond.notify_all()
        if self.closed_by_peer:
            # Close our side at once, as an engine would: the acceptor may hold the session until it does.
            try:
                with self._io_lock:
                    self.socket.close()
            except OSError:
                pass

    def _receive(self) -> bytes:
        """Wait for bytes outside the lock, then read without blocking while holding it: readable TLS bytes
        may be a partial record or a session ticket with no data (SSLWantReadError: wait again)."""
        pending = isinstance(self.socket, ssl.SSLSocket) and self.socket.pending()
        if not pending and not select.select([self.socket], [], [], 0.2)[0]:
            raise TimeoutError
        with self._io_lock:
            self.socket.settimeout(0.0)
            try:
                return self.socket.recv(65536)
            except BlockingIOError:
                raise TimeoutError from None
            finally:
                self.socket.settimeout(0.2)

    def send(self, data: bytes) -> None:
        try:
            with self._io_lock:
                self.socket.sendall(data)
        except OSError as error:
            raise StepFailed("bytes sent", f"send failed: {error}") from None

    def wait_for(self, predicate: Callable[[Message], bool], timeout_s: float) -> Message | None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for index, message in enumerate(self.messages):
                    if index not in self.consumed and predicate(message):
                        self.consumed.add(index)
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed_by_peer:
                    return None
                self._cond.wait(remaining)

    def wait_closed(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self.closed_by_peer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def unconsumed(self) -> list[Message]:
        with self._cond:
            return [m for i, m in enumerate(self.messages) if i not in self.consumed]

    def close(self) -> None:
        self._stopping = True
        with self._io_lock:
            try:
                self.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.socket.close()
        self._reader.join(timeout=2)


def _summary(messages: Sequence[Message]) -> str:
    if not messages:
        return "nothing"
    parts = []
    for message in messages[-4:]:
        detail = [f"35={message.msg_type}"]
        for tag in (34, 7, 16, 36, 45, 58, 371, 372, 373, 380, 39, 150, 103, 112, 123):
            value = message.get(tag)
            if value is not None:
                detail.append(f"{tag}={value[:60]}")
        parts.append(" ".join(detail))
    return "; ".join(parts)


@dataclass(frozen=True)
class Predicate:
    tag: int
    op: str
    value: str

    def __call__(self, message: Message) -> bool:
        actual = message.get(self.tag)
        if self.op == "?":
            return actual is not None
        if self.op == "!":
            return actual is None
        if actual is None:
            return False
        if self.op == "~":
            return self.value.lower() in actual.lower()
        return actual == self.value

    def __str__(self) -> str:
        return f"{self.tag}{self.op}{self.value}" if self.op in "=~" else f"{self.tag}{self.op}"


class ScriptRun:
    """The state of one script run: connections, placeholders and the step log."""

    def __init__(self, script: Script, target: Target) -> None:
        self.script = script
        self.target = target
        self.uid = uuid.uuid4().hex[:10].upper()
        self.connections: dict[str, Connection] = {}
        self.current = "main"

    # ------------------------------------------------------------------ placeholders
    def expand(self, text: str) -> str:
        def now(match: re.Match[str]) -> str:
            seconds = int(match.group(2) or 0) * (-1 if match.group(1) == "-" else 1)
            return utc_timestamp(timedelta(seconds=seconds))

        text = _NOW.sub(now, text)
        values = {"sender": self.target.sender, "target": self.target.target, "begin": self.target.begin_string,
                  "uid": self.uid, "account": self.target.account, "symbol": self.target.symbol,
                  "price": self.target.price, "qty": self.target.qty, "other_account": self.target.other_account,
                  "other_order": self.target.other_order}
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        return text

    # ------------------------------------------------------------------ connections
    @property
    def connection(self) -> Connection:
        found = self.connections.get(self.current)
        if found is None:
            raise StepFailed(f"an open connection {self.current!r}", "none (use connect or logon first)")
        return found

    def connect(self, name: str) -> None:
        try:
            self.connections[name] = Connection(self.target.host, self.target.port, self.target.tls_ca)
        except OSError as error:
            raise StepFailed(f"TCP connection to {self.target.host}:{self.target.port}", str(error)) from None
        self.current = name

    def close_all(self) -> None:
        for connection in self.connections.values():
            connection.close()
        self.connections.clear()

    # ------------------------------------------------------------------ messages
    def build(self, tokens: Sequence[str]) -> tuple[bytes, str]:
        """Turn `tag=value` tokens into bytes, adding the header fields the script left out."""
        given: list[tuple[int, str]] = []
        overrides: dict[str, str] = {}
        removed: set[int] = set()
        for token in tokens:
            tag_text, separator, value = token.partition("=")
            if not separator:
                raise ScriptError(f"{self.script.path}: bad field {token!r}")
            if tag_text in ("!9", "!10"):
                overrides[tag_text] = self.expand(value)
                continue
            tag = int(tag_text)
            if value == "-":
                removed.add(tag)
                continue
            given.append((tag, self.expand(value)))
        connection = self.connection
        values = dict(given)
        seq_text = values.get(34)
        if seq_text is None:
            seq = connection.next_seq
            connection.next_seq += 1
        elif seq_text.startswith("+"):
            seq = connection.next_seq + int(seq_text[1:])
            connection.next_seq = seq + 1
        else:
            seq = int(seq_text)
        defaults = {49: self.target.sender, 56: self.target.target, 34: str(seq), 52: utc_timestamp()}
        header = []
        for tag in HEADER_ORDER:
            if tag in removed:
                continue
            if tag == 34:
                header.append((34, str(seq)))
            elif tag in values:
                header.append((tag, values[tag]))
            elif tag in defaults:
                header.append((tag, defaults[tag]))
        extra_header = [(tag, value) for tag, value in given if tag in OTHER_HEADER_TAGS]
        body = [(tag, value) for tag, value in given
                if tag not in HEADER_ORDER and tag not in OTHER_HEADER_TAGS and tag != 8]
        begin = values.get(8, self.target.begin_string)
        fields = [(8, begin), *header, *extra_header, *body]
        data = encode(fields, body_length=overrides.get("!9"), check_sum=overrides.get("!10"))
        return data, "|".join(f"{t}={v}" for t, v in fields)

    def predicates(self, tokens: Sequence[str]) -> tuple[list[Predicate], float]:
        predicates: list[Predicate] = []
        wait_s = DEFAULT_WAIT_S
        for token in tokens:
            if token.startswith("within="):
                wait_s = float(token.split("=", 1)[1])
                continue
            match = re.fullmatch(r"(\d+)([=~])(.*)", token) or re.fullmatch(r"(\d+)([?!])()", token)
            if match is None:
                raise ScriptError(f"{self.script.path}: bad expectation {token!r}")
            predicates.append(Predicate(int(match.group(1)), match.group(2), self.expand(match.group(3))))
        return predicates, wait_s

    # ------------------------------------------------------------------ steps
    def run_step(self, step: Step) -> StepResult:
        handler = getattr(self, "step_" + step.kind.replace("-", "_"))
        expected, seen = handler(step.args)
        return StepResult(step.text, expected, seen, True)

    def step_connect(self, args: Sequence[str]) -> tuple[str, str]:
        self.connect(args[0] if args else "main")
        return "TCP connection", "connected"

    def step_use(self, args: Sequence[str]) -> tuple[str, str]:
        if args[0] not in self.connections:
            raise StepFailed(f"connection {args[0]!r}", "unknown connection")
        self.current = args[0]
        return f"switch to {args[0]}", "switched"

    def step_close(self, args: Sequence[str]) -> tuple[str, str]:
        self.connection.close()
        del self.connections[self.current]
        return "close our side", "closed"

    def step_wait(self, args: Sequence[str]) -> tuple[str, str]:
        time.sleep(float(args[0]))
        return f"wait {args[0]} s", "waited"

    def step_send(self, args: Sequence[str]) -> tuple[str, str]:
        data, shown = self.build(args)
        self.connection.send(data)
        return "sent", shown

    def step_sendraw(self, args: Sequence[str]) -> tuple[str, str]:
        text = self.expand(args[0])
        self.connection.send(text.replace("|", "\x01").encode("latin-1"))
        return "sent raw", text

    def step_logon(self, args: Sequence[str]) -> tuple[str, str]:
        if self.current not in self.connections or self.connection.closed_by_peer:
            self.connect(self.current)
        fields = ["35=A", "34=1", "98=0", f"108={self.target.heartbeat_s}", "141=Y"]
        fields += [f"{tag}={value}" for tag, value in self.target.logon_fields]
        fields += list(args)
        merged: dict[str, str] = {}
        for token in fields:
            tag, _, value = token.partition("=")
            merged[tag] = value
        tokens = [f"{tag}={value}" for tag, value in merged.items()]
        reply = self._send_logon(tokens)
        if reply is None and self.connection.closed_by_peer and not self.connection.messages:
            # QuickFIX 1.16's threaded acceptor can still hold the session of a connection that just ended and
            # then drops a new logon unanswered after 5 s; a FIX engine reconnects, and so do we, once.
            self.connect(self.current)
            reply = self._send_logon(tokens)
        if reply is None:
            raise StepFailed("Logon (35=A) reply", _summary(self.connection.unconsumed())
                             + (" (disconnected)" if self.connection.closed_by_peer else ""))
        return "Logon (35=A) reply", _summary([reply])

    def _send_logon(self, tokens: Sequence[str]) -> Message | None:
        self.connection.next_seq = 1
        data, _ = self.build(tokens)
        seq = dict(token.split("=", 1) for token in tokens).get("34", "1")
        if seq.isdigit():
            self.connection.next_seq = int(seq) + 1
        self.connection.send(data)
        return self.connection.wait_for(Predicate(35, "=", "A"), DEFAULT_WAIT_S)

    def step_logout(self, args: Sequence[str]) -> tuple[str, str]:
        self.step_send(["35=5", *args])
        reply = self.connection.wait_for(Predicate(35, "=", "5"), DEFAULT_WAIT_S)
        if reply is None:
            raise StepFailed("Logout (35=5) reply", _summary(self.connection.unconsumed()))
        if not self.connection.wait_closed(DEFAULT_WAIT_S):
            raise StepFailed("Logout reply then disconnect", "still connected")
        return "Logout reply then disconnect", _summary([reply]) + " then disconnect"

    def step_expect(self, args: Sequence[str]) -> tuple[str, str]:
        predicates, wait_s = self.predicates(args)
        expected = " ".join(str(p) for p in predicates)
        message = self.connection.wait_for(lambda m: all(p(m) for p in predicates), wait_s)
        if message is None:
            closed = " (disconnected)" if self.connection.closed_by_peer else ""
            raise StepFailed(expected, _summary(self.connection.unconsumed()) + closed)
        return expected, _summary([message])

    def step_expect_disconnect(self, args: Sequence[str]) -> tuple[str, str]:
        _, wait_s = self.predicates(args)
        if not self.connection.wait_closed(wait_s):
            raise StepFailed("disconnect", "still connected; " + _summary(self.connection.unconsumed()))
        return "disconnect", "disconnected"

    def step_expect_silence(self, args: Sequence[str]) -> tuple[str, str]:
        seconds = float(args[0])
        predicates, _ = self.predicates(args[1:])

        def unwanted(message: Message) -> bool:
            if predicates:
                return all(p(message) for p in predicates)
            return message.msg_type != "0"

        before = len(self.connection.messages)
        time.sleep(seconds)
        arrived = [m for m in self.connection.messages[before:] if unwanted(m)]
        expected = "no " + (" ".join(str(p) for p in predicates) or "message") + f" for {seconds:g} s"
        if arrived:
            raise StepFailed(expected, _summary(arrived))
        return expected, "silence"


def run_script(script: Script, target: Target) -> ScriptResult:
    """Run one script to its end or its first failed step; connections are always closed."""
    result = ScriptResult(script.case, script.title)
    if script.roles and target.role not in script.roles:
        result.skipped = True
        return result
    run = ScriptRun(script, target)
    try:
        for step in script.steps:
            try:
                result.steps.append(run.run_step(step))
            except StepFailed as failure:
                result.steps.append(StepResult(step.text, failure.expected, failure.seen, False))
                break
            except ScriptError as error:
                result.steps.append(StepResult(step.text, "a runnable step", f"script error: {error}", False))
                break
    finally:
        run.close_all()
    return result


def run_all(scripts: Sequence[Script], target: Target) -> list[ScriptResult]:
    return [run_script(script, target) for script in scripts]


def summary_table(results: Sequence[ScriptResult]) -> str:
    """One line per script: case, title, the decisive step, expected, seen, verdict."""
    rows = [("case", "scenario", "input", "expected", "seen", "result")]
    for result in results:
        if result.skipped:
            rows.append((result.case, result.title, "-", "-", "-", "skipped"))
            continue
        decisive = result.failure or (result.steps[-1] if result.steps else StepResult("-", "-", "-", True))
        rows.append((result.case, result.title, decisive.step, decisive.expected, decisive.seen,
                     "PASS" if result.ok else "FAIL"))
    widths = [min(max(len(row[i]) for row in rows), cap) for i, cap in enumerate((6, 48, 40, 40, 60, 7))]
    lines = []
    for row in rows:
        cells = [(cell if len(cell) <= width else cell[:width - 1] + "…").ljust(width)
                 for cell, width in zip(row, widths, strict=True)]  # a cell per column
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
