"""Layering (agent/remote/layers.py): who wins, key by key, and what is local-only."""
from __future__ import annotations

import pytest

from agent.config import load_config
from agent.remote.layers import LayerError, facility_keys, local_only_keys, merge, parse_fragment

LOCAL = {"device_id": "pc-1", "rescan_seconds": 60, "upload": {"broker": "mqtts://a:8883", "ca_file": "ca.pem",
                                                               "cert_file": "c.pem", "key_file": "k.pem"},
         "instruments": [{"id": "xrd", "watch": ["/d/xrd"], "include": ["*"]},
                         {"id": "sem", "watch": ["/d/sem"]}]}


def test_merge_key_by_key_and_instruments_by_id():
    frag = parse_fragment('rescan_seconds = 5\n[upload]\nrate_limit = 1000\n'
                          '[[instruments]]\nid = "xrd"\ninclude = ["*.raw"]\n'
                          '[[instruments]]\nid = "new"\nwatch = ["/d/new"]\n')
    out = merge(LOCAL, frag)
    assert out["rescan_seconds"] == 5
    assert out["upload"] == {**LOCAL["upload"], "rate_limit": 1000}   # broker etc. untouched
    assert [i["id"] for i in out["instruments"]] == ["xrd", "sem", "new"]
    assert out["instruments"][0] == {"id": "xrd", "watch": ["/d/xrd"], "include": ["*.raw"]}
    assert LOCAL["instruments"][0]["include"] == ["*"]                 # inputs unchanged
    keys = {k["key"]: k for k in facility_keys(LOCAL, frag)}
    assert keys["rescan_seconds"] == {"key": "rescan_seconds", "value": 5, "local": 60, "differs": True}
    assert keys["instruments[xrd].include"]["local"] == ["*"]


@pytest.mark.parametrize("text, named", [
    ('device_id = "evil"\n', ["device_id"]),
    ('state_dir = "/tmp/x"\n', ["state_dir"]),
    ('[upload]\nkey_file = "/tmp/k"\ncert_file = "/tmp/c"\n', ["upload.cert_file", "upload.key_file"]),
    ('[remote]\ntrust_root = "/tmp/mine.pub"\n', ["remote"]),
    ('[upload]\nrate_limit = 5\n', []),
])
def test_local_only_keys_named(text, named):
    assert local_only_keys(parse_fragment(text)) == named


def test_fragment_errors_in_words():
    with pytest.raises(LayerError, match="not valid TOML"):
        parse_fragment("rescan_seconds = \n")
    with pytest.raises(LayerError, match=r"instruments\[0\].*no id"):
        local_only_keys(parse_fragment('[[instruments]]\ninclude = ["*"]\n'))


def test_load_config_takes_the_remote_layer_and_ignores_a_hostile_one(tmp_path):
    (tmp_path / "w").mkdir()
    local = tmp_path / "labedge.toml"
    local.write_text(f'device_id = "pc-1"\nrescan_seconds = 60\nstate_dir = "{tmp_path}/s"\n'
                     f'[[instruments]]\nid = "i"\nwatch = ["{tmp_path}/w"]\n')
    assert load_config(local).rescan_seconds == 60
    (tmp_path / "remote.toml").write_text("rescan_seconds = 7\n")
    assert load_config(local).rescan_seconds == 7
    assert load_config(local, remote=False).rescan_seconds == 60
    # a remote.toml that names a local-only key (planted by hand) is ignored as a whole
    (tmp_path / "remote.toml").write_text('rescan_seconds = 8\nstate_dir = "/tmp/elsewhere"\n')
    cfg = load_config(local)
    assert (cfg.rescan_seconds, cfg.state_dir) == (60, tmp_path / "s")


def test_a_layer_the_schema_no_longer_takes_is_ignored_and_status_says_so(tmp_path):
    from agent.status import build_status, format_status
    (tmp_path / "w").mkdir()
    local = tmp_path / "labedge.toml"
    local.write_text(f'device_id = "pc-1"\nrescan_seconds = 60\nstate_dir = "{tmp_path}/s"\n'
                     f'[remote]\ntrust_root = "root.pub"\n[[instruments]]\nid = "i"\nwatch = ["{tmp_path}/w"]\n')
    (tmp_path / "remote.toml").write_text("rescan_seconds = 5\nno_such_key = 1\n")   # e.g. after a downgrade
    cfg = load_config(local)
    assert cfg.rescan_seconds == 60
    cfg.state_dir.mkdir(parents=True)
    from agent.state.store import StateStore
    StateStore(cfg.state_db).close()
    assert "remote.toml is IGNORED" in format_status(build_status(cfg))


def test_labedge_check_names_an_unusable_trust_root(tmp_path):
    from agent.check import run_checks
    (tmp_path / "w").mkdir()
    local = tmp_path / "labedge.toml"
    local.write_text(f'device_id = "pc-1"\nstate_dir = "{tmp_path}/s"\nspool_dir = "{tmp_path}/p"\n'
                     f'log_dir = "{tmp_path}/l"\n[remote]\ntrust_root = "root.pub"\n'
                     f'[[instruments]]\nid = "i"\nwatch = ["{tmp_path}/w"]\n')
    problems = run_checks(local)
    assert [p.where for p in problems] == ["remote.trust_root"] and not problems[0].stops_run
    assert "root.pub" in problems[0].message and "would all be refused" in problems[0].message
    (tmp_path / "root.pub").write_text("not a key")
    assert "not a PEM public key" in run_checks(local)[0].message
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from wire import signed
    (tmp_path / "root.pub").write_bytes(signed.public_pem(Ed25519PrivateKey.generate().public_key()))
    assert run_checks(local) == []


def test_machine_wide_the_layer_lives_in_the_service_folder_not_beside_the_config(tmp_path, monkeypatch):
    """The service cannot write /etc/labedge (systemd ProtectSystem=strict; on Windows the config folder is
    the administrators'), so in system mode the facility's layer is kept in the service's own folder."""
    from agent.machine import ENV_ROOT, system_paths
    from agent.remote.layers import RemoteFiles

    monkeypatch.setenv(ENV_ROOT, str(tmp_path / "root"))
    (tmp_path / "w").mkdir()
    conf_dir = tmp_path / "root" / "etc" / "labedge"
    conf_dir.mkdir(parents=True)
    local = conf_dir / "labedge.toml"
    local.write_text(f'device_id = "pc-1"\nmode = "system"\nrescan_seconds = 60\n'
                     f'[[instruments]]\nid = "i"\nwatch = ["{tmp_path}/w"]\n')
    files = RemoteFiles.beside(local, system=True)
    assert files.toml.parent == system_paths().base_dir / "remote"
    (conf_dir / "remote.toml").write_text("rescan_seconds = 9\n")      # beside the config: not the service's
    assert load_config(local, check_watch_folders=False).rescan_seconds == 60
    files.toml.parent.mkdir(parents=True)
    files.toml.write_text("rescan_seconds = 7\n")
    assert load_config(local, check_watch_folders=False).rescan_seconds == 7
    assert load_config(local, check_watch_folders=False, system=True).rescan_seconds == 7
