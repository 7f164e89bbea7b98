"""Once: the push history an older labedge kept in its own SQLite file beside fleet.toml, into the catalog.

Idempotent: the import is recorded in ``config_imports`` under a digest of the pushes it carried, in the
same transaction as the rows, so a crash before the file is renamed imports nothing twice. The old file
is kept, renamed ``remote-history.sqlite3.imported``. Imported pushes get new ids above the catalog's
(another administrator may have pushed already) and keep their versions; ``imported_from`` names them.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from facility.remote.history import History

LEGACY_NAME = "remote-history.sqlite3"
_PUSH = ("id", "version", "signer", "key_id", "targets", "fragment", "document", "pushed_at", "state", "note")
_RESULT = ("push_id", "device", "version", "state", "reason", "at")


class LegacyHistoryError(Exception):
    """The old history file cannot be read; it is left where it is."""


def read_legacy(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            pushes = [tuple(r) for r in conn.execute(f"SELECT {', '.join(_PUSH)} FROM pushes ORDER BY id")]
            results = [tuple(r) for r in conn.execute(f"SELECT {', '.join(_RESULT)} FROM results "
                                                      "ORDER BY push_id, device")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise LegacyHistoryError(f"{path}: cannot read the old push history ({exc}); it is left as it is") from None
    return pushes, results


def import_legacy(history: "History", path: Path, *, say: Callable[[str], None]) -> int:
    """Import ``path`` unless a history with the same pushes was imported before; rename it either way.
    Returns the number of pushes imported (0: already there)."""
    pushes, results = read_legacy(path)
    digest = hashlib.sha256(json.dumps([pushes, results], sort_keys=True, default=str).encode()).hexdigest()
    db = history.db
    imported = 0
    with db.transaction():
        db.lock_pushes()
        if not db.query("SELECT 1 FROM config_imports WHERE digest = ?", (digest,)):
            base = int(db.query("SELECT COALESCE(MAX(id), 0) FROM config_pushes")[0][0])
            new_id: dict[int, int] = {}
            for p in pushes:
                row = dict(zip(_PUSH, p))
                new_id[int(row["id"])] = base + len(new_id) + 1
                db.execute("INSERT INTO config_pushes (id, version, signer, key_id, targets, fragment, document, "
                           "pushed_at, state, note, host, imported_from) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                           (new_id[int(row["id"])], row["version"], row["signer"], row["key_id"], row["targets"],
                            row["fragment"], row["document"], row["pushed_at"],
                            # a rollout that was running when the old labedge stopped is not running now
                            "interrupted" if row["state"] in ("running", "aborting") else row["state"],
                            row["note"], history.host, f"{path} push {row['id']}"))
            for r in results:
                row = dict(zip(_RESULT, r))
                if int(row["push_id"]) in new_id:
                    db.execute("INSERT INTO config_results (push_id, device, version, state, reason, at) "
                               "VALUES (?,?,?,?,?,?)", (new_id[int(row["push_id"])], row["device"], row["version"],
                                                        row["state"], row["reason"], row["at"]))
            db.execute("INSERT INTO config_imports (digest, source, pushes, imported_at) VALUES (?,?,?,?)",
                       (digest, f"{history.host}:{path}", len(pushes), time.time()))
            imported = len(pushes)
    kept = path.with_name(path.name + ".imported")
    if kept.exists():
        kept = path.with_name(f"{path.name}.{digest[:8]}.imported")
    path.rename(kept)
    for side in ("-wal", "-shm"):  # a clean close removes them; a crashed old labedge may have left them
        extra = path.with_name(path.name + side)
        if extra.exists():
            extra.rename(kept.with_name(kept.name + side))
    history.audit("history_imported", source=str(path), kept=str(kept), pushes=imported, digest=digest)
    say(f"imported {imported} push(es) from {path} into the catalog {history.catalog.url}; the old file is kept "
        f"as {kept.name}" if imported else f"{path} was imported before; the old file is kept as {kept.name}")
    return imported
