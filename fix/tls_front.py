"""TLS for FIX client sessions: stunnel in front of the plaintext QuickFIX acceptor.

The quickfix 1.16 wheel is built without SSL, so TLS terminates in stunnel (Debian package `stunnel4`):
clients connect to the TLS port, stunnel forwards the decrypted stream to the acceptor on loopback, and
the acceptor's `AllowedRemoteAddresses=127.0.0.1` keeps its plaintext port closed to everyone else. A
plaintext FIX Logon sent to the TLS port fails the TLS handshake and is dropped without an answer.

`StunnelFront` writes a private stunnel configuration (foreground, no PID file, TLS 1.2 or newer) and runs
stunnel as a child process for exactly as long as the gateway runs; `start_supervised` also starts it
again whenever it exits.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

STARTUP_TIMEOUT_S = 10.0
log = structlog.get_logger(__name__)


class TlsFrontError(RuntimeError):
    """stunnel is missing, misconfigured, or did not come up: the message says which."""


@dataclass(frozen=True)
class TlsFrontConfig:
    """Where TLS clients connect, where the plaintext acceptor listens, and the server's certificate."""

    accept_port: int
    connect_port: int
    cert_file: Path
    key_file: Path
    accept_host: str = "0.0.0.0"
    connect_host: str = "127.0.0.1"

    def stunnel_text(self, log_file: Path) -> str:
        return "\n".join([
            "foreground = yes",
            "pid =",
            f"output = {log_file}",
            # No syslog: without /dev/log (containers) glibc's syslog writes each line to /dev/console, a
            # slow device (1.4 ms a line here, longer when its reader stalls); a connection's thread sat in
            # that write while its client's TLS handshake timed out.
            "syslog = no",
            "debug = 5",  # notice: each connection accepted and closed, for operators and failing tests
            "[fix-clients]",
            f"accept = {self.accept_host}:{self.accept_port}",
            f"connect = {self.connect_host}:{self.connect_port}",
            f"cert = {self.cert_file}",
            f"key = {self.key_file}",
            "sslVersionMin = TLSv1.2",
            "TIMEOUTclose = 0",
            "",
        ])


def stunnel_binary() -> str:
    for name in ("stunnel4", "stunnel"):
        found = shutil.which(name)
        if found:
            return found
    raise TlsFrontError("stunnel is not installed (Debian: apt-get install stunnel4)")


class StunnelFront:
    """A running stunnel in front of one acceptor port; `start()` returns once the TLS port accepts."""

    def __init__(self, config: TlsFrontConfig) -> None:
        self.config = config
        self._directory = Path(tempfile.mkdtemp(prefix="oms-stunnel-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.restarts = 0

    @property
    def log_file(self) -> Path:
        return self._directory / "stunnel.log"

    @property
    def stderr_file(self) -> Path:
        return self._directory / "stunnel.stderr"

    def log_tail(self, characters: int = 2000) -> str:
        """The end of stunnel's log, for an operator's or a failing test's message."""
        try:
            return self.log_file.read_text(errors="replace")[-characters:]
        except OSError:
            return ""

    def check(self) -> None:
        """Refuse at once what would stop stunnel from starting: a missing certificate or key, no stunnel."""
        for path in (self.config.cert_file, self.config.key_file):
            if not Path(path).is_file():
                raise TlsFrontError(f"TLS file not found: {path}")
        stunnel_binary()

    def start(self) -> StunnelFront:
        self.check()
        self._launch()
        return self

    def start_supervised(self, check_every_s: float = 1.0) -> StunnelFront:
        """Start, then start stunnel again whenever it exits, until stop(): a TLS port that dies at night
        comes back by itself (each exit and restart is logged at error level)."""
        self.start()
        self._supervisor = threading.Thread(target=self._supervise, args=(check_every_s,), daemon=True,
                                            name="tls-front")
        self._supervisor.start()
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _supervise(self, check_every_s: float) -> None:
        while not self._stopping.wait(check_every_s):
            process = self._process
            if process is None or process.poll() is None:
                continue
            log.error("tls_front_exited", returncode=process.returncode, port=self.config.accept_port,
                      stunnel_log=self.log_tail(400))
            try:
                self._launch()
            except (TlsFrontError, OSError) as error:
                log.error("tls_front_restart_failed", port=self.config.accept_port, error=str(error))
            else:
                self.restarts += 1
                log.warning("tls_front_restarted", port=self.config.accept_port, restarts=self.restarts)

    def _launch(self) -> None:
        """Write the configuration, run stunnel, and return once its TLS port accepts."""
        conf = self._directory / "stunnel.conf"
        conf.write_text(self.config.stunnel_text(self.log_file), encoding="utf-8")
        # In the foreground stunnel logs to stderr as well as to its log file. A pipe nobody reads would
        # fill after some 64 KB of log lines and then block stunnel, every connection with it: a file.
        with self.stderr_file.open("wb") as stderr:
            self._process = subprocess.Popen([stunnel_binary(), str(conf)], stdout=subprocess.DEVNULL,
                                             stderr=stderr)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self.stderr_file.read_text(errors="replace")
                raise TlsFrontError(f"stunnel exited: {(error or self.log_tail()).strip()[-400:]}")
            if port_open(probe_host(self.config.accept_host), self.config.accept_port):
                return
            time.sleep(0.05)
        self._terminate()
        raise TlsFrontError(f"stunnel did not listen on port {self.config.accept_port} in {STARTUP_TIMEOUT_S:g} s")

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=STARTUP_TIMEOUT_S + 5)
            self._supervisor = None
        self._terminate()
        shutil.rmtree(self._directory, ignore_errors=True)

    def _terminate(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._process = None

    def __enter__(self) -> StunnelFront:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def probe_host(accept_host: str) -> str:
    """Where to check that stunnel listens: the address it binds, or loopback when it binds every address."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(accept_host, accept_host)


def port_open(host: str, port: int) -> bool:
    """Whether a TCP connection to host:port is accepted now."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def self_signed_certificate(directory: Path, common_name: str = "localhost") -> tuple[Path, Path]:
    """A throwaway certificate and key for tests and the demo (openssl CLI); never for production."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsFrontError("openssl is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    f"/CN={common_name}", "-addext", f"subjectAltName=DNS:{common_name},IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key
