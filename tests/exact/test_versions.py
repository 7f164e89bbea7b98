"""A file written in pieces, rewritten, or created empty: exactly one package per version that
matters, earlier undelivered versions superseded on the PC, delivered ones linked at the receiver."""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

from core_helpers import labedge, db_packages, instrument, package_dirs, provenance, status_json, wait_for, write_config
from transport_helpers import AgentProc, ReceiverProc, agent_config, db_counts, stored

from facility.links import superseded_by

SETTLE = 0.3
HEAD = b'*RAS_DATA_START\n*RAS_HEADER_START\n*FILE_COMMENT "pause test"\n*RAS_HEADER_END\n*RAS_INT_START\n'
TAIL = b"*RAS_INT_END\n*RAS_DATA_END\n"
ROWS = [b"%.2f %d 1.0\n" % (10 + i * 0.02, 100 + i) for i in range(40)]


def _set(cfg: Path, **inst: object) -> None:
    """Add instrument keys to a transport-helper config (its [[instruments]] table is last)."""
    cfg.write_text(cfg.read_text() + "".join(f"{k} = {json.dumps(v)}\n" for k, v in inst.items()))


def _pausing_writer(path: Path, pause: float, *, keep_open: bool) -> threading.Thread:
    """Half the scan, a pause of ``pause`` s (the translator would say "looks truncated"), the rest."""
    def write() -> None:
        if keep_open:
            with open(path, "wb") as fh:
                fh.write(HEAD + b"".join(ROWS[:20]))
                fh.flush()
                time.sleep(pause)
                fh.write(b"".join(ROWS[20:]) + TAIL)
        else:  # an instrument that closes the file between writes
            path.write_bytes(HEAD + b"".join(ROWS[:20]))
            time.sleep(pause)
            with open(path, "ab") as fh:
                fh.write(b"".join(ROWS[20:]) + TAIL)
    t = threading.Thread(target=write)
    t.start()
    return t


FINAL = HEAD + b"".join(ROWS) + TAIL


def _raw(pkg: Path) -> bytes:
    (raw,) = (pkg / "data" / "raw").iterdir()
    return raw.read_bytes()


def test_writer_pausing_3x_settle_with_the_file_open_delivers_one_package(tmp_path, broker, pki):
    """Close-after-write (inotify): the file is not taken while its writer holds it open."""
    store = tmp_path / "store"
    rx = ReceiverProc(tmp_path / "rx", broker, pki, store).start_connected()
    cfg = agent_config(tmp_path / "agent", broker.url, pki)
    _set(cfg, truncated_grace_seconds=0)  # only the close event may save us here
    agent = AgentProc(cfg).start()
    try:
        wait_for(lambda: agent.status()["agent"]["running"], 30, "the agent")
        # the open must happen under a live inotify watch (under load the watcher starts after "running")
        wait_for(lambda: "(events)" in agent.text(), 30, "the watcher's inotify watch")
        _pausing_writer(tmp_path / "agent" / "watch" / "scan.ras", 3 * SETTLE + 0.3, keep_open=True).join()
        wait_for(lambda: db_counts(cfg).get("delivered") == 1, 30, "the delivery")
        time.sleep(3 * SETTLE)  # a second package would be built by now
        assert db_counts(cfg) == {"queued": 0, "uploading": 0, "delivered": 1, "failed": 0, "superseded": 0}
    finally:
        agent.kill()
        rx.kill()
    (paths,) = stored(store).values()
    assert _raw(paths[0]) == FINAL


def test_looks_truncated_waits_for_the_writer_and_ships_once(tmp_path):
    """Polling (no close events), a writer that closes between writes: the translator's
    "looks truncated" holds the package for the grace period; the change replaces it."""
    watch = tmp_path / "watch"
    watch.mkdir()
    cfg = write_config(tmp_path, [instrument(watch, polling="always", poll_seconds=0.1, truncated_grace_seconds=20)])
    proc = AgentProc(cfg).start()
    try:
        wait_for(lambda: status_json(cfg)["agent"]["running"], 30, "the agent")
        src = watch / "scan.ras"
        writer = _pausing_writer(src, 3 * SETTLE + 1.5, keep_open=False)
        wait_for(lambda: any("looks truncated" in p["message"] for p in status_json(cfg)["problems"]), 20,
                 "status to say the file looks truncated and waits")
        writer.join()
        db = tmp_path / "state" / "state.sqlite3"
        wait_for(lambda: db_packages(db), 30, "the package")
        time.sleep(1.0)
    finally:
        proc.kill()
    (pkg,) = db_packages(db)
    assert pkg["state"] == "queued"
    (d,) = package_dirs(tmp_path / "spool")
    assert _raw(d) == FINAL and "supersedes" not in provenance(d)


def test_undelivered_truncated_package_is_superseded_and_never_uploaded(tmp_path, broker, pki):
    """No grace (0) and no close events: the truncated version is packaged while the agent is
    offline; the final version supersedes it on the PC; once online only the final one leaves."""
    root = tmp_path / "agent"
    online = agent_config(root, broker.url, pki)
    _set(online, polling="always", truncated_grace_seconds=0)
    offline = root / "offline.toml"
    text = online.read_text()
    upload = text[text.index("[upload]"):text.index("[[instruments]]")]
    offline.write_text(text.replace(upload, "").replace("[web]\nenabled = false", "[web]\nport = 0"))
    proc = AgentProc(offline).start()
    db = root / "state" / "state.sqlite3"
    try:
        wait_for(lambda: status_json(offline)["agent"]["running"], 30, "the offline agent")
        _pausing_writer(root / "watch" / "scan.ras", 3 * SETTLE + 1.0, keep_open=False)
        wait_for(lambda: {p["state"] for p in db_packages(db)} == {"queued", "superseded"}, 30,
                 "the truncated package to be superseded by the final one")
        st = status_json(offline)
        text = labedge("status", "-c", str(offline)).stdout
        with urllib.request.urlopen(st["page"], timeout=10) as r:  # the local page says so too
            page = r.read().decode()
    finally:
        proc.kill()
    assert "1 superseded by a later version before upload (never sent)" in text, text
    assert "superseded by a later version (never sent)" in page
    first, second = sorted(db_packages(db), key=lambda p: p["id"])
    assert first["state"] == "superseded" and first["superseded_by"] == second["id"]
    assert st["packages"]["superseded"] == 1 and st["packages"]["queued"] == 1
    assert [d.name for d in package_dirs(root / "spool")] == [second["id"]]  # its space is freed
    assert provenance(root / "spool" / "packages" / second["id"])["supersedes"] == [first["id"]]
    store = tmp_path / "store"
    rx = ReceiverProc(tmp_path / "rx", broker, pki, store).start_connected()
    agent = AgentProc(online).start()
    try:
        wait_for(lambda: db_counts(online).get("delivered") == 1, 30, "the final version's delivery")
    finally:
        agent.kill()
        rx.kill()
    assert list(stored(store)) == [second["id"]], "the superseded package left the PC"
    assert _raw(stored(store)[second["id"]][0]) == FINAL
    assert superseded_by(store, "dev-01") == {first["id"]: second["id"]}  # linked, though never received


def test_new_version_of_a_delivered_file_names_it_and_the_receiver_links_them(tmp_path, broker, pki):
    store = tmp_path / "store"
    rx = ReceiverProc(tmp_path / "rx", broker, pki, store).start_connected()
    cfg = agent_config(tmp_path / "agent", broker.url, pki)
    agent = AgentProc(cfg).start()
    src = tmp_path / "agent" / "watch" / "notes.txt"
    try:
        src.write_text("first version\n")
        wait_for(lambda: db_counts(cfg).get("delivered") == 1, 30, "the first delivery")
        src.write_text("second version, longer\n")
        wait_for(lambda: db_counts(cfg).get("delivered") == 2, 30, "the second delivery")
        wait_for(lambda: superseded_by(store, "dev-01"), 10, "the receiver to record the link")
        text = labedge("status", "-c", str(cfg)).stdout
        # a config with [upload] is never called offline (it once said so from another config's state)
        assert "set up to upload" in text and "not set up to upload" not in text, text
    finally:
        agent.kill()
        rx.kill()
    first, second = sorted(stored(store))
    assert superseded_by(store, "dev-01") == {first: second}
    assert provenance(stored(store)[second][0])["supersedes"] == [first]
    assert "supersedes" not in provenance(stored(store)[first][0])


def test_empty_file_waits_for_content_or_ships_once_marked_empty(tmp_path):
    watch = tmp_path / "watch"
    watch.mkdir()
    cfg = write_config(tmp_path, [instrument(watch, empty_file_seconds=15),
                                  instrument(tmp_path / "watch2", iid="quiet", empty_file_seconds=1)])
    (tmp_path / "watch2").mkdir()
    proc = AgentProc(cfg).start()
    db = tmp_path / "state" / "state.sqlite3"
    try:
        wait_for(lambda: status_json(cfg)["agent"]["running"], 30, "the agent")
        filled = watch / "empty.ras"
        filled.write_bytes(b"")
        stays = tmp_path / "watch2" / "blank.txt"
        stays.write_bytes(b"")
        wait_for(lambda: db_packages(db), 30, "the always-empty file's package")
        time.sleep(10 - 1)  # the instrument writes the first file 10 s after creating it
        assert len(db_packages(db)) == 1
        filled.write_bytes(FINAL)
        wait_for(lambda: len(db_packages(db)) == 2, 30, "the filled file's package")
        time.sleep(1.5)  # rescans and settle ticks: no third package
    finally:
        proc.kill()
    assert len(db_packages(db)) == 2
    by_name = {Path(provenance(d)["sources"][0]["path"]).name: provenance(d) for d in package_dirs(tmp_path / "spool")}
    assert by_name["blank.txt"]["empty"] is True and by_name["blank.txt"]["sources"][0]["size"] == 0
    assert "empty" not in by_name["empty.ras"] and by_name["empty.ras"]["sources"][0]["size"] == len(FINAL)


def test_offer_carries_supersedes_and_a_hostile_list_is_refused():
    import pytest

    from agent.package.ids import new_package_id
    from wire import protocol as P

    pid, old = new_package_id(), new_package_id()
    files = [P.FileEntry(t, 1, "0" * 64) for t in P.TAG_FILES]
    offer = P.make_offer(pid, 65536, files, supersedes=[old])
    got = P.parse_offer(pid, offer.to_json(), max_bytes=10**6)
    assert got.supersedes == (old,) and got.tag == offer.tag
    for bad in (["../../etc"], [pid], "x", [old] * (P.MAX_SUPERSEDES + 1)):
        msg = json.loads(offer.to_json())
        msg["supersedes"] = bad
        with pytest.raises(P.ProtocolError, match="supersedes"):
            P.parse_offer(pid, json.dumps(msg).encode(), max_bytes=10**6)
