"""The push history in the facility catalog (facility/remote/history.py): one counter for every administrator
who shares the catalog, on SQLite and on real PostgreSQL; the old per-machine file imported once."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from facility.catalog import CatalogError, open_catalog
from facility.remote.history import History, HistoryError, history_catalog, open_history
from facility.remote.history_import import LEGACY_NAME

REPO = Path(__file__).resolve().parents[2]
PUSHES_EACH = 25

# Two administrators' tools, each its own process and connection: migrate the fresh catalog at the same
# moment, then allocate versions as fast as they can.
PUSHER = r"""
import json, sys
from pathlib import Path
from facility.remote.history import History, history_catalog
url, audit, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()                       # "go": both start together
h = History(history_catalog(url), audit)
got = [h.reserve_push(signer=audit.stem, key_id="k", targets={"devices": ["d"]}, fragment="x = 1\n",
                      sign=lambda v: json.dumps({"version": v}).encode())[:2] for _ in range(n)]
h.close()
print(json.dumps(got), flush=True)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "catalog.sqlite3")
    return request.getfixturevalue("pg_url")


def _history(url: str, where: Path) -> History:
    return History(history_catalog(url), where / "remote-audit.jsonl")


def test_two_processes_pushing_at_once_never_share_a_version(url, tmp_path):
    base = 0
    procs = [subprocess.Popen([sys.executable, "-c", PUSHER, url, str(tmp_path / f"admin{i}.jsonl"),
                               str(PUSHES_EACH)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    got = [json.loads(out) for out, _ in outs]
    versions = [v for g in got for _, v in g]
    ids = [i for g in got for i, _ in g]
    assert sorted(versions) == list(range(base + 1, base + 2 * PUSHES_EACH + 1))   # no gap, no duplicate
    assert len(set(ids)) == len(ids)
    h = _history(url, tmp_path)
    assert h.max_version() == base + 2 * PUSHES_EACH
    assert {p["signer"] for p in h.pushes(limit=2 * PUSHES_EACH)} == {"admin0", "admin1"}
    h.close()


def test_version_goes_above_the_devices_and_a_failed_signature_records_nothing(url, tmp_path):
    h = _history(url, tmp_path)
    top = h.max_version()
    pid, v, doc = h.reserve_push(signer="a", key_id="k", targets={"devices": ["d"]}, fragment="x = 1\n",
                                 floor=top + 7, sign=lambda v: f"doc {v}".encode())
    assert v == top + 8 and doc == f"doc {v}".encode()

    def refuse(_v: int) -> bytes:
        raise RuntimeError("devices would refuse this push")
    with pytest.raises(RuntimeError):
        h.reserve_push(signer="a", key_id="k", targets={}, fragment="", sign=refuse)
    assert h.max_version() == v and h.pushes(limit=1)[0]["id"] == pid
    h.close()


def test_two_administrators_sharing_the_catalog_see_one_history(url, tmp_path):
    alice_dir, bob_dir = tmp_path / "alice", tmp_path / "bob"
    for d in (alice_dir, bob_dir):
        d.mkdir()
    alice = open_history(url, alice_dir / "fleet.toml")
    bob = open_history(url, bob_dir / "fleet.toml")
    pid, v, _ = alice.reserve_push(signer="alice", key_id="ka", targets={"groups": ["xrd"]}, fragment="x = 1\n",
                                   sign=lambda v: b"{}")
    alice.result(pid, "pc-1", v, "sent")
    seen = bob.pushes(limit=1)[0]
    assert (seen["id"], seen["version"], seen["signer"], seen["state"]) == (pid, v, "alice", "running")
    assert seen["results"][0]["device"] == "pc-1" and bob.fragment_of(v) == "x = 1\n"
    assert pid in bob.request_abort() and alice.abort_requested(pid)       # bob stops alice's rollout
    assert bob.reserve_push(signer="bob", key_id="kb", targets={}, fragment="y = 2\n", sign=lambda v: b"{}")[1] == v + 1
    audit = [json.loads(x)["event"] for x in (bob_dir / "remote-audit.jsonl").read_text().splitlines()]
    assert audit == ["abort_requested", "push"]          # each administrator's own local trail
    alice.close()
    bob.close()


def test_newer_config_tools_never_stop_an_older_receiver(url, tmp_path):
    """An administrator's tools are upgraded before the receivers: the history's migrations (even ones
    this receiver has never heard of) must not make the receiver refuse the catalog, or every upload of
    the facility would stop at the receiver's next start. Each writer checks only its own ledger."""
    from facility.catalog.migrations import MIGRATIONS
    h = History(history_catalog(url), tmp_path / "remote-audit.jsonl")
    with h.db.transaction():   # what a later labedge's `fleet config` may have applied
        h.db.execute("INSERT INTO _config_migrations (name, applied_at) VALUES ('9999_later_history', 'x')")
    h.close()
    rx = open_catalog(url)      # the receiver's start: migrates its tables, ignores the history's ledger
    assert [r[0] for r in rx.db.query("SELECT name FROM _migrations ORDER BY name")] == [n for n, _ in MIGRATIONS]
    rx.close()
    open_catalog(url, readonly=True).close()   # and `labedge fleet status` reads it
    with pytest.raises(CatalogError, match="newer labedge.*9999_later_history"):
        history_catalog(url)    # while an older config tool refuses the newer history, in words


def test_the_config_tools_never_touch_the_receivers_migrations(url, tmp_path):
    h = History(history_catalog(url), tmp_path / "remote-audit.jsonl")
    tables = {r[0] for r in h.db.query("SELECT name FROM _config_migrations")}
    assert tables == {"0001_remote_config_history"}
    with pytest.raises(Exception):   # the receiver's ledger is the receiver's to create
        h.db.query("SELECT name FROM _migrations")
    h.close()


OLD_SCHEMA = """
CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL);
INSERT INTO _migrations VALUES ('0001_remote_history', 0);
CREATE TABLE pushes (id INTEGER PRIMARY KEY AUTOINCREMENT, version INTEGER NOT NULL, signer TEXT NOT NULL,
    key_id TEXT NOT NULL, targets TEXT NOT NULL, fragment TEXT NOT NULL, document TEXT NOT NULL,
    pushed_at REAL NOT NULL, state TEXT NOT NULL, note TEXT);
CREATE TABLE results (push_id INTEGER NOT NULL REFERENCES pushes(id), device TEXT NOT NULL,
    version INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT, at REAL NOT NULL, PRIMARY KEY (push_id, device));
INSERT INTO pushes VALUES (1, 1, 'admin', 'k', '{"devices": ["pc-1"]}', 'a = 1', '{}', 100.0, 'done', '');
INSERT INTO pushes VALUES (2, 2, 'admin', 'k', '{"groups": ["xrd"]}', 'a = 2', '{}', 200.0, 'running', NULL);
INSERT INTO results VALUES (1, 'pc-1', 1, 'applied', '', 101.0);
INSERT INTO results VALUES (2, 'pc-1', 2, 'sent', '', 201.0);
INSERT INTO results VALUES (2, 'pc-2', 2, 'refused', 'stale_version', 202.0);
"""


def test_the_old_history_file_is_imported_once_and_kept(tmp_path):
    url = str(tmp_path / "catalog.sqlite3")
    other = _history(url, tmp_path)                    # another administrator pushed into the catalog first
    other.finish_push(other.start_push(version=5, signer="bob", key_id="kb", targets={}, fragment="b = 1",
                                       document=b"{}"), "done")
    other.close()
    admin = tmp_path / "admin"
    admin.mkdir()
    old = sqlite3.connect(admin / LEGACY_NAME)
    old.executescript(OLD_SCHEMA)
    old.close()
    said: list[str] = []
    h = open_history(url, admin / "fleet.toml", say=said.append)
    assert said == [f"imported 2 push(es) from {admin / LEGACY_NAME} into the catalog {url}; the old file is "
                    f"kept as {LEGACY_NAME}.imported"]
    assert not (admin / LEGACY_NAME).exists() and (admin / f"{LEGACY_NAME}.imported").is_file()
    got = {p["version"]: p for p in h.pushes()}
    assert sorted(got) == [1, 2, 5] and got[5]["id"] == 1
    assert (got[1]["id"], got[2]["id"]) == (2, 3)       # new ids above the catalog's, versions kept
    assert got[2]["state"] == "interrupted" and h.running() == []   # nobody is pushing version 2 now
    assert [(r["device"], r["state"], r["reason"]) for r in got[2]["results"]] == [
        ("pc-1", "sent", ""), ("pc-2", "refused", "stale_version")]
    assert got[1]["imported_from"].endswith(f"{LEGACY_NAME} push 1") and h.fragment_of(1) == "a = 1"
    assert h.max_version() == 5
    h.close()

    said.clear()                                       # opened again: nothing to import, nothing said
    open_history(url, admin / "fleet.toml", say=said.append).close()
    assert said == []
    # a crash between the commit and the rename leaves the old file in place: it is not imported twice
    (admin / f"{LEGACY_NAME}.imported").rename(admin / LEGACY_NAME)
    h = open_history(url, admin / "fleet.toml", say=said.append)
    assert "was imported before" in said[0] and len(h.pushes()) == 3
    h.close()


def test_an_unreadable_old_file_is_left_alone_with_a_warning(tmp_path):
    (tmp_path / LEGACY_NAME).write_bytes(b"not a database at all" * 100)
    said: list[str] = []
    h = open_history(str(tmp_path / "catalog.sqlite3"), tmp_path / "fleet.toml", say=said.append)
    assert said and said[0].startswith("warning: ") and "left as it is" in said[0]
    assert (tmp_path / LEGACY_NAME).is_file() and h.pushes() == []
    h.close()


def test_no_catalog_is_refused_in_words(tmp_path):
    with pytest.raises(HistoryError, match="set catalog_url"):
        open_history(None, tmp_path / "fleet.toml")
    with pytest.raises(HistoryError, match="its folder does not exist"):
        open_history(str(tmp_path / "receiver-store" / ".catalog.sqlite3"), tmp_path / "fleet.toml")
    assert not (tmp_path / "receiver-store").exists()


def test_config_commands_without_a_catalog_exit_2_in_words(tmp_path, broker, pki):
    from fleet_helpers import write_fleet_toml
    fcfg = write_fleet_toml(tmp_path, broker, pki)
    p = subprocess.run([sys.executable, "-m", "agent", "fleet", "config", "push", "--config", str(fcfg), "--abort"],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "no catalog" in p.stderr and "Traceback" not in p.stderr, p.stderr
