"""A throwaway PostgreSQL server of the drills' own, so they can really stop, crash and restart it.

The shared server on 127.0.0.1:5432 serves every other test of the run; restarting it would break them. A
cluster made by `initdb` in a temporary directory, on a free port, is the same PostgreSQL binary with the
same durability (fsync and synchronous_commit on), and a drill may kill it with `pg_ctl stop -m immediate`
(what a crash or power cut does to the server process) or restart it politely (`-m fast`).

PostgreSQL refuses to run as root: when the tests run as root the server runs as the `postgres` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.ports import free_port

START_TIMEOUT_S = 30


class PostgresClusterError(RuntimeError):
    """The throwaway cluster could not be made or started (the message says which command and why)."""


def postgres_bindir() -> Path:
    """The directory of `initdb` and `pg_ctl`: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise PostgresClusterError("initdb not found (install the PostgreSQL server package)")
    return Path(candidates[-1]).parent


class ThrowawayPostgres:
    """One PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only, trust auth."""

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.port = free_port()  # below the ephemeral range: see tests/ports.py
        self.directory = Path(tempfile.mkdtemp(prefix="oms-pg-drill-"))
        self.data = self.directory / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
            self.directory.chmod(0o700)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> ThrowawayPostgres:
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                   "-c fsync=on -c synchronous_commit=on")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.directory / "server.log"),
                  "-w", "-t", str(START_TIMEOUT_S), "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """`fast`: the server ends every session and shuts down cleanly (a restart by operations);
        `immediate`: every server process quits at once, without a checkpoint (a crash)."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown stop mode {mode!r}")
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        completed = subprocess.run(self._command("pg_ctl", "-D", str(self.data), "status"),
                                   capture_output=True, text=True, check=False)
        return completed.returncode == 0

    def destroy(self) -> None:
        if self.data.exists() and self.running():
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def server_log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bindir / program), *args]
        return ["runuser", "-u", "postgres", "--", *command] if self._as_postgres else command

    def _run(self, program: str, *args: str) -> None:
        completed = subprocess.run(self._command(program, *args), capture_output=True, text=True, check=False,
                                   timeout=START_TIMEOUT_S + 30)
        if completed.returncode != 0:
            raise PostgresClusterError(f"{program} {' '.join(args)} failed ({completed.returncode}): "
                                       f"{(completed.stderr or completed.stdout).strip()[-500:]}")
