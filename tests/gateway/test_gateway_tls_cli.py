"""`oms gateway run --tls-port`: the gateway process runs stunnel in front of its client acceptor for as long
as it runs, so an institutional client logs on over TLS; bad TLS options are refused with one clear line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from harness import VenueHarness, eventually, free_port, seed_oms, write_gateway_config

from cli.main import main
from fix.certification.runner import Target, run_script
from fix.certification.script import load_scripts
from fix.tls_front import port_open, self_signed_certificate
from oms.db.migrate import upgrade
from oms.service.uow import Database
from oms.settings import get_settings

pytestmark = [pytest.mark.fix, pytest.mark.timeout(120)]
OMS = Path(sys.executable).parent / "oms"
SCRIPTS = {s.case: s for s in load_scripts(Path(__file__).resolve().parents[2] / "fix" / "certification" / "scripts")}


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[VenueHarness]:
    harness = VenueHarness(tmp_path / "venue").start()
    yield harness
    harness.stop()


def test_a_client_logs_on_over_tls_and_the_tls_port_closes_with_the_gateway(
        tmp_path: Path, venue: VenueHarness, stunnel: str) -> None:
    database_url = f"sqlite:///{tmp_path / 'oms.sqlite3'}"
    database = Database.from_url(database_url)
    upgrade(database.engine)
    seed_oms(database, accounts=("ACC1",))
    database.dispose()
    config = write_gateway_config(tmp_path / "gateway", venue.port, free_port())
    # as the README asks: the plaintext acceptor takes connections from this host (stunnel) only
    config.write_text(config.read_text().replace("[DEFAULT]", "[DEFAULT]\nAllowedRemoteAddresses=127.0.0.1", 1))
    cert, key = self_signed_certificate(tmp_path / "tls")
    tls_port = free_port()
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(OMS), "gateway", "run", "--config", str(config), "--tls-port", str(tls_port), "--tls-cert",
             str(cert), "--tls-key", str(key), "--tls-host", "127.0.0.1"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "OMS_DATABASE_URL": database_url},
            cwd=tmp_path / "gateway")
    try:
        def ready() -> bool:
            assert process.poll() is None, log.read_text(errors="replace")
            return "venue_recovery_finished" in log.read_text(errors="replace")

        eventually(ready, 60)
        target = Target("127.0.0.1", tls_port, sender="CLIENT1", target="OMS", role="gateway", account="ACC1",
                        tls_ca=cert)
        result = run_script(SCRIPTS["1S-a"], target)
        assert result.ok, "\n".join(map(str, result.steps))
        assert f"TLS for client sessions on 127.0.0.1:{tls_port}" in log.read_text(errors="replace")

        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text(errors="replace")
        assert not port_open("127.0.0.1", tls_port), "stunnel outlived the gateway"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_tls_port_without_certificate_and_key_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["gateway", "run", "--tls-port", "9879"])
    assert result.exit_code == 2
    assert "--tls-port needs --tls-cert and --tls-key" in result.output


def test_a_missing_certificate_file_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      stunnel: str) -> None:
    monkeypatch.setenv("OMS_DATABASE_URL", f"sqlite:///{tmp_path / 'oms.sqlite3'}")
    get_settings.cache_clear()
    config = write_gateway_config(tmp_path / "gateway", free_port(), free_port())
    missing = tmp_path / "nowhere.pem"
    result = CliRunner().invoke(main, ["gateway", "run", "--config", str(config), "--tls-port", str(free_port()),
                                      "--tls-cert", str(missing), "--tls-key", str(missing)])
    get_settings.cache_clear()
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: TLS file not found: {missing}"
