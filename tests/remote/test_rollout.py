"""Rollout planning and the facility's history (facility/remote/): waves, versions, diff, abort."""
from __future__ import annotations

import pytest

from facility.remote.history import History, history_catalog
from facility.remote.rollout import RolloutError, check_fragment, diff_lines, members, next_version, waves


def test_waves_start_with_the_canaries_and_double():
    devs = [f"d{i}" for i in range(10)]
    assert waves(devs, 1) == [["d0"], ["d1", "d2"], ["d3", "d4", "d5", "d6"], ["d7", "d8", "d9"]]
    assert waves(devs, 0) == [devs] and waves(devs, 10) == [devs] and waves([], 1) == []


def test_fragment_checked_before_signing():
    with pytest.raises(RolloutError, match="local-only keys.*upload.key_file"):
        check_fragment('[upload]\nkey_file = "/tmp/k"\n')
    with pytest.raises(RolloutError, match="not valid TOML"):
        check_fragment("rescan_seconds =\n")
    with pytest.raises(RolloutError, match="sets nothing"):
        check_fragment("# nothing\n")


def test_history_versions_diff_and_abort(tmp_path):
    h = History(history_catalog(str(tmp_path / "catalog.sqlite3")), tmp_path / "remote-audit.jsonl")
    statuses = {"a": {"online": True, "config": {"applied_version": 3, "desired_version": 4, "groups": ["xrd"]}},
                "b": {"online": False, "config": {"applied_version": 0, "groups": ["xrd", "sem"]}},
                "c": {"online": True, "config": {"groups": ["sem"]}}}
    assert members(statuses, "xrd") == ["a", "b"]
    assert next_version(h, statuses, ["a", "b"]) == 5            # above anything a device reported
    pid = h.start_push(version=3, signer="admin", key_id="k", targets={"devices": ["a"]},
                       fragment="rescan_seconds = 5\n[upload]\nrate_limit = 100\n", document=b"{}")
    h.result(pid, "a", 3, "applied")
    h.finish_push(pid, "done")
    assert next_version(h, {}, ["z"]) == 4                       # above anything pushed before
    lines = diff_lines(h, statuses, ["a", "b"], "rescan_seconds = 9\n[web]\nport = 9000\n")
    assert lines == ["a (remote version 3):", "  + web.port = 9000", "  ~ rescan_seconds: 5 -> 9",
                     "  - upload.rate_limit (back to the PC's own value)",
                     "b (no remote layer):", "  + rescan_seconds = 9", "  + web.port = 9000"]
    p2 = h.start_push(version=4, signer="admin", key_id="k", targets={"groups": ["xrd"]}, fragment="x = 1\n",
                      document=b"{}")
    assert not h.abort_requested(p2)
    assert h.request_abort() == [p2] and h.abort_requested(p2)
    h.close()
    again = History(history_catalog(str(tmp_path / "catalog.sqlite3")), tmp_path / "audit")  # not re-migrated
    assert [p["state"] for p in again.pushes()] == ["aborting", "done"]
    assert again.pushes()[1]["results"][0]["state"] == "applied"
    again.close()


def test_a_push_devices_would_refuse_is_caught_before_it_is_sent(tmp_path):
    from facility.remote.rollout import _self_check
    from remote_helpers import Facility
    fac = Facility(tmp_path)
    bob_list_before = fac.bob.admin_keys
    _self_check(fac.bundle("rescan_seconds = 5\n", 1, signer=fac.bob), fac.root_pub)   # fine today
    fac.revoke_bob()
    fac.bob.admin_keys = fac.folder.admin_list()          # bob's folder now holds the new list
    with pytest.raises(RolloutError, match="devices would refuse this push: signed with the revoked"):
        _self_check(fac.bundle("rescan_seconds = 5\n", 2, signer=fac.bob), fac.root_pub)
    assert bob_list_before["version"] < fac.bob.admin_keys["version"]


def test_fleet_view_flags_a_refused_or_rolled_back_config():
    import time as _t

    from facility.fleet.view import assess
    now = _t.time()
    doc = {"v": 1, "device": "pc-1", "online": True, "sent_at": now, "connected_at": now - 60, "interval": 60,
           "config": {"version": "3", "state": "rolled_back", "applied_version": 3, "event_version": 4}}
    line = assess("pc-1", doc, None, now=now, default_interval=60)
    assert line.state == "warning" and "remote config rolled back" in line.why
    doc["config"]["state"] = "applied"
    assert assess("pc-1", doc, None, now=now, default_interval=60).state == "ok"
