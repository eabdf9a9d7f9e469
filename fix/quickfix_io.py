"""The only place gateway values meet QuickFIX objects: reading fields, building and sending messages.

Rules from the Python binding (SwigDirector_Application): a Python exception escaping a callback that is not
one of QuickFIX's own ends the process, so callers catch everything else; FieldNotFound,
IncorrectDataFormat, IncorrectTagValue and UnsupportedMessageType are how a callback asks QuickFIX for a
session Reject or a BusinessMessageReject.
"""

from __future__ import annotations

import threading

import quickfix as fix

from fix.wire import MSG_TYPE, Outbound, refuse_unprintable

QUICKFIX_ERRORS = (fix.FieldNotFound, fix.IncorrectDataFormat, fix.IncorrectTagValue, fix.UnsupportedMessageType)


class QuietApplication(fix.Application):  # type: ignore[misc]
    """A QuickFIX Application that tracks logon in `logged_on` and ignores everything else: the base of the
    demo client, the benchmark clients and the relay, which override only the callbacks they use."""

    def __init__(self) -> None:
        super().__init__()
        self.logged_on = threading.Event()

    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        self.logged_on.set()

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        self.logged_on.clear()

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass


class QfFields:
    """FieldSource over a QuickFIX FieldMap (message body or header)."""

    __slots__ = ("_map",)

    def __init__(self, field_map: fix.FieldMap) -> None:
        self._map = field_map

    def get(self, tag: int) -> str | None:
        """The value, or None when absent. A value with control characters or bytes that are not UTF-8
        (they reach Python as lone surrogates) is refused as incorrect data format before anything acts on
        it: such a value could be booked but never echoed back (QuickFIX cannot encode it again)."""
        if self._map.isSetField(tag):
            value = str(self._map.getField(tag))
            if not value.isprintable():
                refuse_unprintable([(tag, value)])
            return value
        return None


def msg_type(message: fix.Message) -> str:
    return str(message.getHeader().getField(MSG_TYPE))


def session_name(session_id: fix.SessionID) -> str:
    """BeginString:Sender->Target, the key our settings and maps use (SessionID is not hashable)."""
    return session_id.toString()


def build_message(outbound: Outbound) -> fix.Message:
    """Outbound -> quickfix.Message; sendToTarget fills the session's header fields."""
    message = fix.Message()
    header = message.getHeader()
    header.setField(MSG_TYPE, outbound.msg_type)
    for tag, value in outbound.header:
        header.setField(tag, value)
    for tag, value in outbound.fields:
        message.setField(tag, value)
    for group in outbound.groups:
        for entry in group.entries:
            order = fix.IntArray(len(entry) + 1)
            for position, (tag, _) in enumerate(entry):
                order[position] = tag
            order[len(entry)] = 0
            fix_group = fix.Group(group.count_tag, entry[0][0], order)
            for tag, value in entry:
                fix_group.setField(tag, value)
            message.addGroup(fix_group)
    return message


def send(outbound: Outbound, session_id: fix.SessionID) -> bool:
    """Send on a session from any thread; False when QuickFIX does not know the session or refused it."""
    try:
        return bool(fix.Session.sendToTarget(build_message(outbound), session_id))
    except fix.SessionNotFound:
        return False


def is_logged_on(session_id: fix.SessionID) -> bool:
    session = fix.Session.lookupSession(session_id)
    return session is not None and bool(session.isLoggedOn())
