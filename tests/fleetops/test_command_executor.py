"""The device's command worker on a real state DB, without a broker: replay log survives a restart, and a
newer administrator key list (one that revokes a key) counts wherever it arrived first."""
from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.config import load_config
from agent.fleet.commands import CommandExecutor
from agent.health import Health
from agent.state.store import StateStore
from facility.keys import PassphraseSource, Signer, init_keys, revoke_admin
from fleetops_helpers import with_trust_root
from transport_helpers import agent_config
from wire import commands as C
from wire import signed, topics


class Recorder:
    """Actions that only count (the real ones are exercised through real agents in test_commands.py)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def retry(self) -> str:
        self.calls.append("retry")
        return "requeued"

    def pause(self, reason: str) -> str:
        self.calls.append(f"pause:{reason}")
        return "paused"

    def resume(self) -> str:
        return "resumed"

    def rescan(self) -> str:
        return "rescanning"

    def diagnostics(self, cmd_id: str) -> str:
        return "built"

    def renew(self, done) -> str:  # noqa: ANN001
        return "started"


@pytest.fixture()
def setup(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LABEDGE_ROOT_PASSPHRASE", "root-pass-123")
    monkeypatch.setenv("LABEDGE_SIGNING_PASSPHRASE", "sign-pass-123")
    keys = init_keys(tmp_path / "keys", PassphraseSource())
    signer = Signer.from_file(keys.admin_key("admin"), PassphraseSource())
    ident = SimpleNamespace(ca=tmp_path / "ca.pem", certs={"dev-01": (tmp_path / "c.pem", tmp_path / "k.pem")})
    cfg_path = with_trust_root(agent_config(tmp_path / "agent", "mqtts://localhost:1", ident), keys.root_pub)
    cfg = load_config(cfg_path, check_watch_folders=False)
    return keys, signer, cfg


def executor(cfg, sent: list, actions: Recorder) -> tuple[CommandExecutor, StateStore]:
    store = StateStore(cfg.state_db)
    return CommandExecutor(cfg, store, Health(), lambda t, p: sent.append(json.loads(p)), actions), store


def bundle(signer: Signer, cmd_id: str, action: str = "retry") -> bytes:
    return signer.bundle(C.KIND, C.command_payload(cmd_id, action), version=int(time.time() * 1000),
                         targets={"devices": ["dev-01"]}, valid_for=timedelta(minutes=5))


def test_a_replay_after_a_restart_does_nothing(setup) -> None:
    _keys, signer, cfg = setup
    sent: list = []
    acts = Recorder()
    ex, store = executor(cfg, sent, acts)
    data = bundle(signer, "c-1")
    ex.handle(topics.command_topic("rde", "dev-01", "c-1"), data)
    store.close()
    ex, store = executor(cfg, sent, acts)  # the agent restarted
    ex.handle(topics.command_topic("rde", "dev-01", "c-1"), data)
    store.close()
    assert acts.calls == ["retry"]
    assert [(r["status"], r["replayed"]) for r in sent] == [("done", False), ("done", True)]


def test_a_key_revoked_in_a_config_bundle_is_refused_for_commands(setup) -> None:
    keys, signer, cfg = setup
    sent: list = []
    acts = Recorder()
    ex, store = executor(cfg, sent, acts)
    ex.handle(topics.command_topic("rde", "dev-01", "c-1"), bundle(signer, "c-1"))  # list v1 remembered
    revoke_admin(keys, "admin", PassphraseSource())
    # the remote-config worker took the new list (v2, admin revoked) with a config document
    (cfg.state_dir / "remote").mkdir(parents=True, exist_ok=True)
    (cfg.state_dir / "remote" / "state.json").write_text(json.dumps({"trust": {
        "roots": [], "admin_keys": keys.admin_list()}}))
    # a stolen copy of the old key, with the old list in its bundle
    ex.handle(topics.command_topic("rde", "dev-01", "c-2"), bundle(signer, "c-2"))
    store.close()
    assert acts.calls == ["retry"]
    assert sent[-1]["status"] == "refused" and "revoked" in sent[-1]["message"], sent[-1]
    # and the newer list is now the command worker's own: it stays even if the other file goes
    (cfg.state_dir / "remote" / "state.json").unlink()
    ex, store = executor(cfg, sent, acts)
    ex.handle(topics.command_topic("rde", "dev-01", "c-3"), bundle(signer, "c-3"))
    store.close()
    assert sent[-1]["status"] == "refused" and "revoked" in sent[-1]["message"]


def test_no_trust_root_refuses_in_words(setup, tmp_path: Path) -> None:
    _keys, signer, cfg = setup
    text = cfg.source.read_text()
    cfg.source.write_text(text[:text.index("[remote]")])
    cfg2 = load_config(cfg.source, check_watch_folders=False)
    sent: list = []
    ex, store = executor(cfg2, sent, Recorder())
    ex.handle(topics.command_topic("rde", "dev-01", "c-1"), bundle(signer, "c-1"))
    store.close()
    assert sent[0]["status"] == "refused" and "no [remote] trust_root" in sent[0]["message"]
