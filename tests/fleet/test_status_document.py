"""The status document's bound, version and checks (wire/status.py), the fleet.toml loader, and the
view's rules: stale is never shown as fine, the will's offline wins, attention sorts first."""
from __future__ import annotations

import json
import time

import pytest
from fleet_helpers import write_fleet_toml

from config.validation import ConfigError
from facility.fleet.view import assess, build_lines
from facility.fleet_config import ADMIN_CN, load_fleet_config
from wire import status as S
from wire.protocol import ProtocolError


def doc(**kw):
    return {"v": 1, "device": "pc-1", "online": True, "sent_at": time.time(), "interval": 60, **kw}


def test_fit_keeps_the_bound_and_says_what_it_left_out():
    many = [{"kind": "error", "text": f"problem {i}: " + "x" * 400} for i in range(60)]
    data = S.fit(doc(problems=many))
    assert len(data) <= S.MAX_STATUS_BYTES
    got = S.parse_status(data, "pc-1")
    assert len(got["problems"]) + got["problems_omitted"] == 60   # counted, never silently cut
    assert all(len(p["text"]) <= S.MAX_TEXT for p in got["problems"])


def test_parse_refuses_oversize_wrong_device_and_version():
    with pytest.raises(ProtocolError, match="exceeds"):
        S.parse_status(b"{" + b" " * S.MAX_STATUS_BYTES + b"}", "pc-1")
    with pytest.raises(ProtocolError, match="came on 'pc-2'"):
        S.parse_status(S.encode(doc()), "pc-2")
    with pytest.raises(ProtocolError, match="status v"):
        S.parse_status(S.encode(doc(v=2)), "pc-1")
    with pytest.raises(ProtocolError, match="not JSON"):
        S.parse_status(b"\xff", "pc-1")
    with pytest.raises(ProtocolError):
        S.parse_status(S.encode(doc(surprise=1)), "pc-1")


def test_stale_offline_and_order():
    now = time.time()
    lines = build_lines({
        "ok": (doc(device="ok", sent_at=now - 10), None),
        "silent": (doc(device="silent", sent_at=now - 200), None),          # > 3 x 60 s
        "future-clock": (doc(device="future-clock", sent_at=now + 3600), None),
        "gone": (json.loads(S.offline_document("gone", "connection lost", now - 500)), None),
        "failing": (doc(device="failing", sent_at=now - 5, queue={"failed": 1}), None),
        "expiring": (doc(device="expiring", sent_at=now - 5, cert_not_after=now + 10 * 86400), None),
        "pc-worried": (doc(device="pc-worried", sent_at=now - 5, pc_state="error",
                           pc_reason="the agent cannot write its spool"), None),
    }, [{"device": "only-packages", "status": {}, "last_seen": None, "last_stored": now - 50}],
        default_interval=60, now=now)
    assert [(d.device, d.state) for d in lines] == [
        ("gone", "offline"), ("only-packages", "stale"), ("silent", "stale"), ("failing", "error"),
        ("pc-worried", "error"),
        ("expiring", "warning"), ("future-clock", "ok"), ("ok", "ok")]
    by = {d.device: d for d in lines}
    assert by["future-clock"].last_seen == now      # a wrong clock never shows a time in the future
    assert "never reported a status" in by["only-packages"].why
    assert by["pc-worried"].why == "the PC says: the agent cannot write its spool"   # never "ok" over the PC's word
    assert by["expiring"].cert_days == 10 and "certificate expires in 10 d" in by["expiring"].why


def test_catalog_last_seen_beats_an_old_retained_document():
    now = time.time()
    line = assess("pc-1", doc(sent_at=now - 1000), {"last_seen": now - 20, "status": {}}, now=now,
                  default_interval=60)
    assert line.state == "ok"
    line = assess("pc-1", doc(sent_at=now - 1000), {"last_seen": now - 500, "status": {}}, now=now,
                  default_interval=60)
    assert line.state == "stale"


def test_fleet_toml_defaults_and_errors(tmp_path, pki, broker):
    cfg = load_fleet_config(write_fleet_toml(tmp_path, broker, pki, store_dir="store"))
    assert cfg.client_id == ADMIN_CN and cfg.topic_prefix == "rde" and cfg.dashboard.port == 8780
    assert cfg.dashboard.host == "127.0.0.1" and cfg.status_interval == 60
    assert cfg.catalog_url == str(tmp_path.resolve() / "store" / ".catalog.sqlite3")
    assert cfg.token_file == tmp_path / "dashboard.token"
    with pytest.raises(ConfigError, match=r"unknown key 'dashboard.colour'"):
        load_fleet_config(write_fleet_toml(tmp_path, broker, pki, dashboard={"colour": "x"}))
    p = write_fleet_toml(tmp_path, broker, pki)
    p.write_text(p.read_text().replace(broker.url, "mqtt://plain:1883"))
    with pytest.raises(ConfigError, match=r"broker: 'mqtt://plain:1883' is not allowed \(mqtts://"):
        load_fleet_config(p)
    p = write_fleet_toml(tmp_path, broker, pki)
    p.write_text(p.read_text().replace(str(pki.ca), str(tmp_path / "missing.pem")))
    with pytest.raises(ConfigError, match="ca_file: file .*missing.pem.* does not exist"):
        load_fleet_config(p)
    url = "postgresql://labedge@db.example:5432/catalog"
    assert load_fleet_config(write_fleet_toml(tmp_path, broker, pki, catalog_url=url)).catalog_url == url
