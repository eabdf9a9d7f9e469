"""The gateway's settings, read once from the shared sessions.cfg into frozen values that reject unknown keys.

The gateway owns the [SESSION] sections marked `Component=gateway` and the optional [GATEWAY] section:
acceptor sessions are institutional clients, the single initiator session is the venue. Our own keys live
beside QuickFIX's in the same sections (QuickFIX ignores keys it does not know, so we check every key
ourselves and refuse typos). Relative paths resolve against the directory of sessions.cfg.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from exchange.config import PATH_KEYS, QUICKFIX_KEYS, Section, parse_ini
from exchange.config import ConfigError as _IniError

COMPONENT = "gateway"
GATEWAY_SECTION = "GATEWAY"
SUPPORTED_BEGIN_STRINGS = frozenset({"FIX.4.2", "FIX.4.4"})

# Our keys inside a gateway [SESSION] (upper-cased): the component marker and the client-session policy.
OWN_SESSION_KEYS = frozenset({"COMPONENT", "ACCOUNTS", "PASSWORDHASH", "THROTTLEPERSECOND", "THROTTLEBURST",
                              "CANCELONDISCONNECT"})
CLIENT_ONLY_KEYS = OWN_SESSION_KEYS - {"COMPONENT"}
# Keys of the [GATEWAY] section -> field of GatewaySettings.
GATEWAY_KEYS: Mapping[str, str] = MappingProxyType({
    "OUTBOXPOLLMS": "outbox_poll_ms",
    "REFERENCEPRICEFLUSHMS": "reference_flush_ms",
    "MAXBATCH": "max_batch",
    "METRICSPORT": "metrics_port",
    "RECOVERYTIMEOUTMS": "recovery_timeout_ms",
})
# Defaults for every gateway session when neither the section nor [DEFAULT] sets them.
SESSION_DEFAULTS: Mapping[str, str] = MappingProxyType({"StartTime": "00:00:00", "EndTime": "00:00:00",
                                                        "HeartBtInt": "30"})


class ConfigError(ValueError):
    """sessions.cfg is unusable for the gateway; the message names the section and key."""


@dataclass(frozen=True, slots=True)
class ClientSession:
    """One institutional client session (acceptor): who may connect and what it may do."""

    begin_string: str
    our_comp_id: str
    client_comp_id: str
    accounts: frozenset[str]
    password_hash: str | None
    throttle_per_second: int  # 0: no throttle
    throttle_burst: int
    cancel_on_disconnect: bool
    settings: Mapping[str, str]

    @property
    def key(self) -> str:
        """The QuickFIX SessionID string as the acceptor sees it (ours -> theirs)."""
        return f"{self.begin_string}:{self.our_comp_id}->{self.client_comp_id}"


@dataclass(frozen=True, slots=True)
class VenueSessionSettings:
    """The single venue session (initiator)."""

    begin_string: str
    our_comp_id: str
    venue_comp_id: str
    settings: Mapping[str, str]

    @property
    def key(self) -> str:
        return f"{self.begin_string}:{self.our_comp_id}->{self.venue_comp_id}"


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Everything `oms gateway` reads from sessions.cfg; built only by load_gateway_settings."""

    config_path: Path
    clients: tuple[ClientSession, ...]
    venue: VenueSessionSettings
    outbox_poll_ms: int = 200
    reference_flush_ms: int = 250
    max_batch: int = 256
    metrics_port: int | None = None  # Prometheus /metrics on 127.0.0.1 when set
    recovery_timeout_ms: int = 10_000  # how long recovery waits for the venue's status answers

    def client(self, key: str) -> ClientSession | None:
        for client in self.clients:
            if client.key == key:
                return client
        return None

    def client_accept_ports(self) -> frozenset[int]:
        """The TCP ports the client acceptor listens on (sessions usually share one)."""
        return frozenset(int(_lookup(client.settings, "SocketAcceptPort") or 0) for client in self.clients)

    def acceptor_text(self) -> str:
        return _quickfix_text(client.settings for client in self.clients)

    def initiator_text(self) -> str:
        """The venue session; FileLogPath is repeated under [DEFAULT], where QuickFIX's FileLogFactory
        looks for the path of its global (non-session) log."""
        log_path = _lookup(self.venue.settings, "FileLogPath")
        prefix = f"[DEFAULT]\nFileLogPath={log_path}\n\n" if log_path else ""
        return prefix + _quickfix_text([self.venue.settings])


def _quickfix_text(sessions: object) -> str:
    lines: list[str] = []
    for settings in sessions:  # type: ignore[attr-defined]
        lines.append("[SESSION]")
        lines.extend(f"{key}={value}" for key, value in settings.items() if key.upper() not in OWN_SESSION_KEYS)
        lines.append("")
    return "\n".join(lines) + "\n"


def load_gateway_settings(path: Path | str) -> GatewaySettings:
    """Read sessions.cfg and return the gateway's frozen settings; raises ConfigError on any doubt."""
    config_path = Path(path).resolve()
    try:
        text = config_path.read_text(encoding="utf-8")
        sections = parse_ini(text, str(config_path))
    except OSError as error:
        raise ConfigError(f"cannot read {config_path}: {error}") from error
    except _IniError as error:
        raise ConfigError(str(error)) from error
    defaults = [s for s in sections if s.name.upper() == "DEFAULT"]
    default_values = dict(defaults[0].values) if defaults else {}
    ours = [s for s in sections if s.name == "SESSION" and (s.get("Component") or "").lower() == COMPONENT]
    clients: list[ClientSession] = []
    venues: list[VenueSessionSettings] = []
    for section in ours:
        merged = _merge(default_values, section, config_path)
        kind = (_lookup(merged, "ConnectionType") or "").lower()
        if kind == "acceptor":
            clients.append(_client(merged, f"{config_path}:{section.line}"))
        elif kind == "initiator":
            venues.append(_venue(merged, f"{config_path}:{section.line}"))
        else:
            raise ConfigError(f"{config_path}:{section.line}: ConnectionType must be acceptor or initiator")
    if len(venues) != 1:
        raise ConfigError(f"{config_path}: need exactly one gateway initiator [SESSION] (the venue), got {len(venues)}")
    keys = [client.key for client in clients]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{config_path}: a client session is configured twice")
    values = _gateway_section(sections, str(config_path))
    return GatewaySettings(config_path=config_path, clients=tuple(clients), venue=venues[0], **values)  # type: ignore[arg-type]


def _merge(defaults: Mapping[str, str], section: Section, config_path: Path) -> dict[str, str]:
    where = f"{config_path}:{section.line}"
    for key in section.values:
        if key.upper() not in QUICKFIX_KEYS | OWN_SESSION_KEYS:
            raise ConfigError(f"{where}: [SESSION] has unknown key {key}")
    merged: dict[str, str] = dict(SESSION_DEFAULTS)
    for source in (defaults, section.values):
        for key, value in source.items():
            for existing in [k for k in merged if k.upper() == key.upper()]:
                del merged[existing]
            merged[key] = value
    for key, value in list(merged.items()):
        if key.upper() in PATH_KEYS and value:
            merged[key] = str((config_path.parent / value).resolve())
    begin = _required(merged, "BeginString", where)
    if begin not in SUPPORTED_BEGIN_STRINGS:
        raise ConfigError(f"{where}: BeginString {begin} unsupported (use {sorted(SUPPORTED_BEGIN_STRINGS)})")
    _required(merged, "SenderCompID", where)
    _required(merged, "TargetCompID", where)
    _required(merged, "FileStorePath", where)
    return merged


def _client(merged: dict[str, str], where: str) -> ClientSession:
    _required(merged, "SocketAcceptPort", where)
    accounts = frozenset(a.strip() for a in (_lookup(merged, "Accounts") or "").split(",") if a.strip())
    if not accounts:
        raise ConfigError(f"{where}: a client session needs Accounts=ACCOUNT[,ACCOUNT...]")
    password_hash = _lookup(merged, "PasswordHash") or None
    if password_hash is not None:
        from oms.gateway.credentials import CredentialError, check_hash_format

        try:
            check_hash_format(password_hash)
        except CredentialError as error:
            raise ConfigError(f"{where}: PasswordHash: {error}") from None
    rate = _int(merged, "ThrottlePerSecond", where, 0)
    burst = _int(merged, "ThrottleBurst", where, rate)
    if rate < 0 or burst < 0 or (rate > 0 and burst == 0):
        raise ConfigError(f"{where}: ThrottlePerSecond and ThrottleBurst must be positive (0 = no throttle)")
    cod = (_lookup(merged, "CancelOnDisconnect") or "N").upper()
    if cod not in ("Y", "N"):
        raise ConfigError(f"{where}: CancelOnDisconnect must be Y or N")
    return ClientSession(
        begin_string=_required(merged, "BeginString", where),
        our_comp_id=_required(merged, "SenderCompID", where),
        client_comp_id=_required(merged, "TargetCompID", where),
        accounts=accounts,
        password_hash=password_hash,
        throttle_per_second=rate,
        throttle_burst=burst,
        cancel_on_disconnect=cod == "Y",
        settings=MappingProxyType(merged),
    )


def _venue(merged: dict[str, str], where: str) -> VenueSessionSettings:
    for key in merged:
        if key.upper() in CLIENT_ONLY_KEYS:
            raise ConfigError(f"{where}: {key} applies to client (acceptor) sessions only")
    _required(merged, "SocketConnectHost", where)
    _required(merged, "SocketConnectPort", where)
    merged.setdefault("ReconnectInterval", "1")
    return VenueSessionSettings(
        begin_string=_required(merged, "BeginString", where),
        our_comp_id=_required(merged, "SenderCompID", where),
        venue_comp_id=_required(merged, "TargetCompID", where),
        settings=MappingProxyType(merged),
    )


def _gateway_section(sections: list[Section], source: str) -> dict[str, int]:
    found = [s for s in sections if s.name.upper() == GATEWAY_SECTION]
    if len(found) > 1:
        raise ConfigError(f"{source}: section [{GATEWAY_SECTION}] appears {len(found)} times")
    values: dict[str, int] = {}
    for section in found:
        for key, raw in section.values.items():
            name = GATEWAY_KEYS.get(key.upper())
            if name is None:
                raise ConfigError(f"{source}:{section.line} [{GATEWAY_SECTION}]: unknown key {key} "
                                  f"(known: {sorted(GATEWAY_KEYS)})")
            try:
                number = int(raw)
            except ValueError:
                raise ConfigError(f"{source}:{section.line} [{GATEWAY_SECTION}]: {key}={raw!r} is not an integer") from None
            if number <= 0:
                raise ConfigError(f"{source}:{section.line} [{GATEWAY_SECTION}]: {key} must be positive")
            values[name] = number
    return values


def _lookup(settings: Mapping[str, str], key: str) -> str | None:
    for existing, value in settings.items():
        if existing.upper() == key.upper():
            return value
    return None


def _required(settings: Mapping[str, str], key: str, where: str) -> str:
    value = _lookup(settings, key)
    if not value:
        raise ConfigError(f"{where}: {key} is required")
    return value


def _int(settings: Mapping[str, str], key: str, where: str, default: int) -> int:
    raw = _lookup(settings, key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{where}: {key}={raw!r} is not an integer") from None
