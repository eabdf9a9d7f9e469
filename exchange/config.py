"""The simulated exchange's settings, read once from the shared sessions.cfg.

sessions.cfg is QuickFIX's INI file shared by the gateway and the exchange. QuickFIX reads only [DEFAULT]
and [SESSION] sections and silently ignores keys it does not know, so a typo such as `SocketAcceptPrt`
would go unnoticed. We therefore parse the file ourselves and:

* take the [SESSION] sections marked `Component=exchange` (the gateway's sessions carry `Component=gateway`),
* check every key of those sections against QuickFIX's known setting names,
* read our own keys from the [EXCHANGE] section into a frozen dataclass that rejects unknown keys,
* resolve relative paths against the directory of sessions.cfg, so the venue runs from any directory.

The filtered, path-resolved text is what we hand to QuickFIX's SessionSettings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType

from exchange.end_of_day import parse_end_of_day_time
from exchange.faults import FaultError, FaultPlan

COMPONENT_KEY = "Component"
EXCHANGE_COMPONENT = "exchange"
EXCHANGE_SECTION = "EXCHANGE"

# Setting names QuickFIX 1.16 understands (C++/SessionSettings.h); compared case-insensitively.
QUICKFIX_KEYS = frozenset(key.upper() for key in """
BeginString SenderCompID TargetCompID SessionQualifier DefaultApplVerID ConnectionType UseDataDictionary
SendResetSeqNumFlag SendRedundantResendRequests SendNextExpectedMsgSeqNum DataDictionary TransportDataDictionary
AppDataDictionary UseLocalTime StartTime EndTime StartDay EndDay NonStopSession LogonTime LogoutTime LogonDay
LogoutDay CheckCompID CheckLatency MaxLatency HeartBtInt SocketAcceptPort SocketReuseAddress SocketConnectHost
SocketConnectPort SocketConnectSourceHost SocketConnectSourcePort SocketNodelay SocketSendBufferSize
SocketReceiveBufferSize HostSelectionPolicy HostSelectionPolicyPriorityStartOverInterval ReconnectInterval
ValidateLengthAndChecksum ValidateFieldsOutOfOrder ValidateFieldsHaveValues ValidateUserDefinedFields
AllowUnknownMsgFields PreserveMessageFieldsOrder LogonTimeout LogoutTimeout FileStorePath FileLogPath
FileLogBackupPath ScreenLogShowIncoming ScreenLogShowOutgoing ScreenLogShowEvents ResetOnLogon ResetOnLogout
ResetOnDisconnect RefreshOnLogon MillisecondsInTimeStamp TimestampPrecision HttpAcceptPort PersistMessages
AllowedRemoteAddresses
""".split())
# Our own keys allowed inside a venue [SESSION]/[DEFAULT] section (QuickFIX ignores them).
OWN_SESSION_KEYS = frozenset({COMPONENT_KEY.upper()})
PATH_KEYS = frozenset({"DATADICTIONARY", "TRANSPORTDATADICTIONARY", "APPDATADICTIONARY", "FILESTOREPATH",
                       "FILELOGPATH", "FILELOGBACKUPPATH"})
SUPPORTED_BEGIN_STRINGS = frozenset({"FIX.4.2", "FIX.4.4"})
RESERVED_OWNER = "MM"  # the market maker's owner id in the engine (exchange.market_maker)


class ConfigError(ValueError):
    """sessions.cfg is unusable for the exchange; the message names the section and key."""


@dataclass(frozen=True)
class Section:
    """One INI section in file order; keys keep their spelling, lookups are case-insensitive."""

    name: str
    values: Mapping[str, str]
    line: int

    def get(self, key: str) -> str | None:
        for existing, value in self.values.items():
            if existing.upper() == key.upper():
                return value
        return None


@dataclass(frozen=True)
class VenueSession:
    """One acceptor session of the venue, as QuickFIX will see it (DEFAULT merged in, paths absolute)."""

    begin_string: str
    sender_comp_id: str
    target_comp_id: str
    settings: Mapping[str, str]


@dataclass(frozen=True)
class VenueConfig:
    """Everything `oms exchange run` needs; built only by load_venue_config."""

    config_path: Path
    sessions: tuple[VenueSession, ...]
    journal_dir: Path
    fault_state_file: Path
    control_host: str = "127.0.0.1"
    control_port: int = 9881  # 0: pick a free port (tests); -1: no control endpoint
    market_maker_seed: int = 1
    market_maker_interval_ms: int = 1000  # 0: the market maker only steps when asked (tests)
    fee_rate: Decimal | None = None  # fraction of notional per side; None: the engine's default
    instruments_file: Path | None = None  # None: exchange/data/instruments.csv
    end_of_day_time: time | None = None  # UTC; None: DAY orders expire only by `oms exchange fault end-of-day`
    faults: FaultPlan = field(default_factory=FaultPlan)

    @property
    def journal_path(self) -> Path:
        return self.journal_dir / "commands.jsonl"

    @property
    def accept_port(self) -> int:
        return int(_lookup(self.sessions[0].settings, "SocketAcceptPort") or 0)

    def quickfix_settings_text(self) -> str:
        """The INI text for quickfix.SessionSettings: only the venue's sessions, DEFAULT already merged."""
        lines: list[str] = []
        log_paths = [value for session in self.sessions for key, value in session.settings.items()
                     if key.upper() == "FILELOGPATH"]
        if log_paths:
            # QuickFIX's FileLogFactory also opens an engine-wide event log, which it places by the
            # [DEFAULT] FileLogPath only: without one the acceptor refuses to start.
            lines += ["[DEFAULT]", f"FileLogPath={log_paths[0]}", ""]
        for session in self.sessions:
            lines.append("[SESSION]")
            lines.extend(f"{key}={value}" for key, value in session.settings.items()
                         if key.upper() not in OWN_SESSION_KEYS)
            lines.append("")
        return "\n".join(lines) + "\n"


# Keys of the [EXCHANGE] section: name -> parser applied to the raw string.
def _int(raw: str) -> int:
    return int(raw.strip())


def _decimal(raw: str) -> Decimal:
    try:
        return Decimal(raw.strip())
    except InvalidOperation:
        raise ValueError(f"not a decimal: {raw!r}") from None


EXCHANGE_KEYS: Mapping[str, str] = MappingProxyType({
    "JOURNALDIR": "journal_dir",
    "FAULTSTATEFILE": "fault_state_file",
    "CONTROLHOST": "control_host",
    "CONTROLPORT": "control_port",
    "MARKETMAKERSEED": "market_maker_seed",
    "MARKETMAKERINTERVALMS": "market_maker_interval_ms",
    "FEERATE": "fee_rate",
    "ENDOFDAYTIME": "end_of_day_time",
    "INSTRUMENTSFILE": "instruments_file",
    "FAULTSFILE": "faults_file",
    "FAULTREJECTORDERS": "reject_orders",
    "FAULTDROPREPORTS": "drop_reports",
    "FAULTDELAYREPORTS": "delay_reports",
    "FAULTDELAYMS": "delay_ms",
    "FAULTDUPLICATEREPORTS": "duplicate_reports",
    "FAULTDISCONNECTAFTERORDERS": "disconnect_after_orders",
    "FAULTOMITTEDEXECIDS": "omitted_exec_ids",
})
FAULT_FIELDS = frozenset({"reject_orders", "drop_reports", "delay_reports", "delay_ms", "duplicate_reports",
                          "disconnect_after_orders", "omitted_exec_ids"})


def parse_ini(text: str, source: str = "<string>") -> list[Section]:
    """Split QuickFIX-style INI into sections, keeping repeated [SESSION] sections apart (configparser
    cannot). Comments start with '#' at the beginning of a line, as in QuickFIX."""
    sections: list[Section] = []
    current: dict[str, str] | None = None
    name = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            if current is not None:
                sections.append(Section(name, MappingProxyType(current), start))
            name, current, start = line[1:-1].strip(), {}, number
            continue
        if "=" not in line or current is None:
            raise ConfigError(f"{source}:{number}: expected key=value inside a section, got {raw!r}")
        key, value = (part.strip() for part in line.split("=", 1))
        if key.upper() in (k.upper() for k in current):
            raise ConfigError(f"{source}:{number}: [{name}] repeats key {key}")
        current[key] = value
    if current is not None:
        sections.append(Section(name, MappingProxyType(current), start))
    return sections


def load_venue_config(path: Path | str) -> VenueConfig:
    """Read sessions.cfg and return the venue's frozen settings; raises ConfigError on any doubt."""
    config_path = Path(path).resolve()
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {config_path}: {error}") from error
    sections = parse_ini(text, str(config_path))
    base = config_path.parent
    defaults = _single(sections, "DEFAULT")
    exchange = _single(sections, EXCHANGE_SECTION)
    if exchange is None:
        raise ConfigError(f"{config_path}: no [{EXCHANGE_SECTION}] section")
    sessions = tuple(_venue_session(section, defaults, base, str(config_path))
                     for section in sections
                     if section.name == "SESSION" and (section.get(COMPONENT_KEY) or "").lower() == EXCHANGE_COMPONENT)
    if not sessions:
        raise ConfigError(f"{config_path}: no [SESSION] with {COMPONENT_KEY}={EXCHANGE_COMPONENT}")
    ports = {_lookup(s.settings, "SocketAcceptPort") for s in sessions}
    if len(ports) != 1:
        raise ConfigError(f"{config_path}: venue sessions must share one SocketAcceptPort, got {sorted(map(str, ports))}")
    return _exchange_settings(exchange, sessions, base, str(config_path))


def _single(sections: list[Section], name: str) -> Section | None:
    found = [s for s in sections if s.name.upper() == name.upper()]
    if len(found) > 1:
        raise ConfigError(f"section [{name}] appears {len(found)} times")
    return found[0] if found else None


def _venue_session(section: Section, defaults: Section | None, base: Path, source: str) -> VenueSession:
    merged: dict[str, str] = {}
    for key, value in (defaults.values.items() if defaults else ()):
        merged[key] = value
    for key, value in section.values.items():
        for existing in [k for k in merged if k.upper() == key.upper()]:
            del merged[existing]
        merged[key] = value
    for key in section.values:
        if key.upper() not in QUICKFIX_KEYS | OWN_SESSION_KEYS:
            raise ConfigError(f"{source}:{section.line}: [SESSION] has unknown key {key}")
    for key, value in list(merged.items()):
        if key.upper() in PATH_KEYS and value:
            merged[key] = str((base / value).resolve())
    where = f"{source}:{section.line}"
    begin = _required(merged, "BeginString", where)
    if begin not in SUPPORTED_BEGIN_STRINGS:
        raise ConfigError(f"{where}: BeginString {begin} unsupported (use {sorted(SUPPORTED_BEGIN_STRINGS)})")
    if _required(merged, "ConnectionType", where).lower() != "acceptor":
        raise ConfigError(f"{where}: the exchange only accepts: ConnectionType must be acceptor")
    if _required(merged, "TargetCompID", where) == RESERVED_OWNER:
        raise ConfigError(f"{where}: TargetCompID {RESERVED_OWNER} is reserved for the market maker")
    _required(merged, "SocketAcceptPort", where)
    _required(merged, "FileStorePath", where)
    return VenueSession(begin, _required(merged, "SenderCompID", where), _required(merged, "TargetCompID", where),
                        MappingProxyType(merged))


def _exchange_settings(section: Section, sessions: tuple[VenueSession, ...], base: Path, source: str) -> VenueConfig:
    values: dict[str, object] = {}
    fault_values: dict[str, str] = {}
    faults_file: Path | None = None
    where = f"{source}:{section.line} [{EXCHANGE_SECTION}]"
    for key, raw in section.values.items():
        name = EXCHANGE_KEYS.get(key.upper())
        if name is None:
            raise ConfigError(f"{where}: unknown key {key} (known: {sorted(EXCHANGE_KEYS)})")
        try:
            if name in FAULT_FIELDS:
                fault_values[name] = raw
            elif name == "faults_file":
                faults_file = (base / raw).resolve()
            elif name in ("journal_dir", "fault_state_file", "instruments_file"):
                values[name] = (base / raw).resolve()
            elif name == "control_host":
                if raw not in ("127.0.0.1", "localhost", "::1"):
                    raise ValueError("the control endpoint is loopback only")
                values[name] = raw
            elif name == "fee_rate":
                values[name] = _decimal(raw)
            elif name == "end_of_day_time":
                values[name] = parse_end_of_day_time(raw)
            else:
                values[name] = _int(raw)
        except ValueError as error:
            raise ConfigError(f"{where}: {key}={raw!r}: {error}") from error
    if "journal_dir" not in values:
        raise ConfigError(f"{where}: JournalDir is required")
    values.setdefault("fault_state_file", Path(str(values["journal_dir"])).parent / "faults.json")
    try:
        plan = FaultPlan.from_json_file(faults_file) if faults_file else FaultPlan()
        if fault_values:
            merged = {**_plan_as_mapping(plan), **fault_values}
            plan = FaultPlan.from_mapping(merged)
    except (OSError, ValueError, FaultError) as error:
        raise ConfigError(f"{where}: faults: {error}") from error
    if int(str(values.get("market_maker_interval_ms", 1000))) < 0:
        raise ConfigError(f"{where}: MarketMakerIntervalMs must be >= 0")
    return VenueConfig(config_path=Path(source), sessions=sessions, faults=plan, **values)  # type: ignore[arg-type]


def _plan_as_mapping(plan: FaultPlan) -> dict[str, object]:
    return {name: getattr(plan, name) for name in FAULT_FIELDS}


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
