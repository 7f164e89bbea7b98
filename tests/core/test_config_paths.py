"""The one broker-address and path rule every config loader (agent, receiver, fleet, renewal) uses."""
from __future__ import annotations

from pathlib import Path

from config.validation import broker_address, resolve_path


def test_broker_address_with_and_without_port() -> None:
    assert broker_address("mqtts://broker.lab.example:18883") == ("broker.lab.example", 18883)
    assert broker_address("mqtts://broker.lab.example/") == ("broker.lab.example", 8883)
    assert broker_address("mqtts://127.0.0.1:1/") == ("127.0.0.1", 1)


def test_paths_relative_to_the_config_file_with_home_and_variables(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LABEDGE_TEST_DIR", str(tmp_path / "v"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_path("certs/ca.pem", tmp_path) == tmp_path / "certs" / "ca.pem"
    assert resolve_path("$LABEDGE_TEST_DIR/key.pem", Path("/elsewhere")) == tmp_path / "v" / "key.pem"
    assert resolve_path("~/spool", Path("/elsewhere")) == tmp_path / "home" / "spool"
    assert resolve_path("/abs/store", tmp_path) == Path("/abs/store")
