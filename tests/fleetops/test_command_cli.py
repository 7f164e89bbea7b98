"""`labedge fleet command` says what is wrong in one line (exit 2), before anything is sent."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main as labedge
from facility import pki as P
from facility.keys import PassphraseSource, init_keys


@pytest.fixture()
def fleet_toml(tmp_path: Path, monkeypatch) -> Path:
    ca = P.init_ca(tmp_path / "ca")
    cert, key = P.issue(ca, "labedge-admin", tmp_path / "admin")
    monkeypatch.setenv("LABEDGE_ROOT_PASSPHRASE", "root-pass-123")
    monkeypatch.setenv("LABEDGE_SIGNING_PASSPHRASE", "sign-pass-123")
    keys = init_keys(tmp_path / "keys", PassphraseSource())
    cfg = {"broker": "mqtts://localhost:1", "ca_file": str(ca / "ca.pem"), "cert_file": str(cert),
           "key_file": str(key), "signing_key": str(keys.admin_key("admin"))}
    p = tmp_path / "fleet.toml"
    p.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in cfg.items()))
    return p


def run(capsys, *args: str) -> tuple[int, str]:
    rc = labedge(["fleet", "command", *args])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


@pytest.mark.parametrize("args, words", [
    (["dev-01", "pause"], "pause needs --reason"),
    (["bad/name", "retry"], "not a device id: 'bad/name'"),
    (["group", "retry"], "not a device id: 'group'"),
])
def test_bad_arguments(fleet_toml: Path, capsys, args: list[str], words: str) -> None:
    rc, out = run(capsys, "--config", str(fleet_toml), *args)
    assert rc == 2 and words in out and "Traceback" not in out


def test_wrong_passphrase_and_no_signing_key(fleet_toml: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LABEDGE_SIGNING_PASSPHRASE", "not-the-passphrase")
    rc, out = run(capsys, "--config", str(fleet_toml), "dev-01", "retry")
    assert rc == 2 and "passphrase" in out and "Traceback" not in out
    fleet_toml.write_text("\n".join(ln for ln in fleet_toml.read_text().splitlines() if "signing_key" not in ln))
    rc, out = run(capsys, "--config", str(fleet_toml), "dev-01", "retry")
    assert rc == 2 and "signing_key is not set" in out


def test_unreachable_broker_is_one_line(fleet_toml: Path, capsys) -> None:
    rc, out = run(capsys, "--config", str(fleet_toml), "dev-01", "retry", "--wait", "1")
    assert rc == 2 and "localhost:1" in out and "Traceback" not in out, out
