"""Pair each measurement with a sample sheet before it is packaged.

Rules, most specific first (docs/sheets.md; the page shows which one paired each package):
1. a sheet the user picked (or filled) for this held measurement on the local page;
2. a ``*.sheet.json`` beside the data (in a folder of the measurement's files), of the instrument's
   template, written BEFORE the measurement's files and at most ``sheet_file_hours`` before them
   (an old sheet left in a folder expires; newest valid wins);
3. the instrument's active sheet at the time the measurement settled.
With none, the measurement is HELD as "needs a sheet" (a row in ``holds``) until one of the above
appears; after ``hold_seconds`` the instrument's ``unpaired_policy`` keeps holding ("hold") or
sends it with a minimal invoice marked unpaired ("send").
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

from agent.config import Config, InstrumentConfig
from agent.health import Health
from agent.measurement import Measurement, SourceFile
from agent.pairing import HOLD, MINIMAL_SCHEMA, PAIRED, UNPAIRED, Pairing, minimal_invoice
from agent.sheets import official
from agent.sheets.derive import measured_values
from agent.sheets.invoice import MAX_SHEET_BYTES, InvoiceInvalid, SheetError, build_invoice, parse_sheet
from agent.sheets.sheetdb import SheetDB, SheetRow, fingerprint
from agent.sheets.templates import TemplateError, load_template
from agent.state.store import StateStore
from agent.threads import Worker
from agent.watch.filters import SHEET_SUFFIX
from agent.package.confined import open_in_watched

log = logging.getLogger(__name__)
MAX_SHEETS_PER_FOLDER = 20


def choices_of(cfg: Config) -> dict[str, list[dict[str, str]]]:
    sheets = cfg.raw.get("sheets", {}) if isinstance(cfg.raw, dict) else {}
    return {k: list(sheets.get(k, [])) for k in ("owners", "datasets", "proposals")}


class SheetPairer:
    def __init__(self, cfg: Config, store: StateStore, health: Health) -> None:
        self.cfg, self.store, self.health = cfg, store, health
        official.use_root(cfg.rde_templates_dir)  # an instrument's rde_template names its sheet
        self.db = SheetDB(store)
        self.choices = choices_of(cfg)
        self._resubmit: Callable[[Measurement], None] | None = None
        self.worker = HoldTimer(self)  # the runner starts and stops it with the other threads

    def bind(self, resubmit: Callable[[Measurement], None]) -> None:
        self._resubmit = resubmit

    # -- the Pairer protocol -----------------------------------------------------------------
    def pair(self, m: Measurement, inst: InstrumentConfig) -> Pairing:
        fp = fingerprint(m)
        if m.files and all(self.store.is_packaged(str(f.path), f.size, f.mtime_ns) for f in m.files):
            # resubmitted by us and re-found by a scan: the first one was packaged; drop this copy
            return Pairing(HOLD, {}, {}, details={"reason": "already packaged"})
        hold = self.db.hold(fp)
        settled = min(m.settled_at, hold.settled_at) if hold else m.settled_at
        found = self._find_sheet(m, hold, settled)
        if found is not None:
            sheet, source = found
            try:
                pairing = self._paired(m, inst, sheet, source)
            except (InvoiceInvalid, TemplateError) as exc:
                # the sheet was checked when saved, so this is a template change or a bug: send, visibly
                msg = f"{m.key}: sheet {sheet.id} could not be applied ({exc}); sent unpaired"
                log.error("%s", msg)
                self.health.problem(f"sheet-apply:{fp}", msg, kind="error")
                pairing = self._unpaired(m, f"sheet {sheet.id} could not be applied: {exc}")
            if hold:
                self.db.finish(fp, "released", pairing.status)
            self._publish()
            return pairing
        now = time.time()
        held_at = hold.held_at if hold else now
        if inst.unpaired_policy == "send" and now >= held_at + inst.hold_seconds:
            if hold:
                self.db.finish(fp, "released", UNPAIRED)
            self._publish()
            return self._unpaired(m, f"no sample sheet within {inst.hold_seconds:g} s (unpaired_policy = send)")
        if hold is None:
            self.db.add_hold(fp, m)
            log.info("%s: needs a sample sheet (held)", m.key)
        self._publish()
        return Pairing(HOLD, {}, {}, details={"reason": "needs a sheet", "hold": fp})

    def on_sheet_file(self, instrument_id: str, path: Path) -> None:
        """The watcher saw a settled ``*.sheet.json``: record it and release holds beside it."""
        sheet = self._load_sheet_file(path)
        if sheet is None:
            return
        released = 0
        for h in self.db.holds(instrument_id):
            if path.parent in {f.path.parent for f in h.measurement.files} or Path(h.mkey) == path.parent:
                released += self._resubmit_hold(h.fingerprint, h.measurement)
        log.info("sample sheet %s recorded (%s); %d held measurement(s) released", path, sheet.id, released)

    # -- for the local page ------------------------------------------------------------------
    def assign(self, fp: str, sheet_id: str) -> bool:
        """Pair a held measurement with a saved sheet (the page's pick/fill actions)."""
        h = self.db.hold(fp)
        if h is None or h.state != "held" or self.db.sheet(sheet_id) is None:
            return False
        self.db.assign(fp, sheet_id)
        return bool(self._resubmit_hold(fp, h.measurement))

    def check_holds(self) -> None:
        """Release holds whose time is up (policy send) and drop those whose files changed."""
        now = time.time()
        for h in self.db.holds():
            changed = _changed(h.measurement)
            if changed is not None:
                self.db.finish(h.fingerprint, "gone", changed)
                log.info("%s: held files changed or vanished (%s); hold dropped", h.mkey, changed)
                fresh = _restat(h.measurement)
                if fresh is not None and self._resubmit is not None:
                    self._resubmit(fresh)  # the new version of the files waits (or pairs) on its own
                continue
            try:
                inst = self.cfg.instrument(h.instrument_id)
            except KeyError:
                continue
            due = inst.unpaired_policy == "send" and now >= h.held_at + inst.hold_seconds
            if due and (h.resubmitted_at is None or now - h.resubmitted_at > 60):
                self._resubmit_hold(h.fingerprint, h.measurement)
        self._publish()

    # -- internals ---------------------------------------------------------------------------
    def _resubmit_hold(self, fp: str, m: Measurement) -> int:
        if self._resubmit is None:
            return 0
        self.db.mark_resubmitted(fp)
        self._resubmit(m)
        return 1

    def _find_sheet(self, m: Measurement, hold: Any, settled: float) -> tuple[SheetRow, str] | None:
        if hold is not None and hold.sheet_id:
            s = self.db.sheet(hold.sheet_id)
            if s is not None:
                return s, "picked"
        s = self._sheet_beside(m, self._instrument(m.instrument_id))
        if s is not None:
            return s, "sheet-file"
        s = self.db.active_at(m.instrument_id, settled)
        return (s, "active-sheet") if s is not None else None

    def _instrument(self, iid: str) -> InstrumentConfig | None:
        try:
            return self.cfg.instrument(iid)
        except KeyError:
            return None

    def _sheet_beside(self, m: Measurement, inst: InstrumentConfig | None = None) -> SheetRow | None:
        root = Path(m.watch_root)
        newest = max((f.mtime_ns for f in m.files), default=0)
        max_age_ns = int((inst.sheet_file_hours if inst else 12.0) * 3600e9)
        folders = {f.path.parent for f in m.files}
        if Path(m.key) != root and Path(m.key).parent in folders | {root}:
            folders.add(Path(m.key))  # folder grouping: the measurement's folder itself
        best: tuple[int, SheetRow] | None = None
        for folder in folders:
            if folder != root and root not in folder.parents:
                continue  # only inside the watched tree, never a path taken from data
            try:
                candidates = sorted((p for p in folder.iterdir() if p.name.lower().endswith(SHEET_SUFFIX)),
                                    key=lambda p: p.name)[:MAX_SHEETS_PER_FOLDER]
            except OSError:
                continue
            for p in candidates:
                try:
                    st = p.stat()
                except OSError:
                    continue
                # (coarse FAT/SMB mtimes truncate both the same way, so "written after" keeps its order)
                if not (st.st_mtime_ns <= newest <= st.st_mtime_ns + max_age_ns):
                    continue  # the measurement is older than the sheet, or the sheet has expired for it
                s = self._load_sheet_file(p, quiet=True)
                if s is not None and inst is not None and s.template != inst.sheet_template:
                    self.health.problem(f"sheet-file:{p}", f"{p.name} is a {s.template!r} sheet but {inst.id} uses "
                                        f"{inst.sheet_template!r}: it was not applied to {m.name}", kind="warning", ttl=3600)
                    continue
                if s is not None and (best is None or st.st_mtime_ns > best[0]):
                    best = (st.st_mtime_ns, s)
        return best[1] if best else None

    def _load_sheet_file(self, path: Path, *, quiet: bool = False) -> SheetRow | None:
        key = f"sheet-file:{path}"
        try:
            st = path.stat()
            known = self.db.file_sheet(str(path))
            if known is not None and known[1:] == (st.st_size, st.st_mtime_ns):
                return known[0]
            if st.st_size > MAX_SHEET_BYTES:
                raise SheetError(f"{path}: larger than {MAX_SHEET_BYTES // 1024} KiB; a sample sheet is a few KiB")
            # a sheet beside the data is instrument-folder content: never through a symlink (security 5)
            with os.fdopen(open_in_watched([w for i in self.cfg.instruments for w in i.watch], path), "rb") as fh:
                data = fh.read(MAX_SHEET_BYTES + 1)
            doc = parse_sheet(data, str(path), choices=self.choices)
        except OSError as exc:
            if not quiet:
                self.health.problem(key, f"{path}: sample sheet cannot be read ({exc.strerror})", kind="warning")
            return None
        except SheetError as exc:
            if not quiet:
                log.warning("%s", exc)
                self.health.problem(key, f"{exc}; the sheet was ignored", kind="warning")
            return None
        self.health.clear_problem(key)
        sid = known[0].id if known is not None else doc.sheet_id
        if known is None and self.db.sheet(sid) is not None:
            sid = f"{sid[:27]}-{fingerprint_path(path)}"  # the same saved sheet copied to another folder
        self.db.save_sheet(sid, doc.template, doc.values, source="file", folder=str(path.parent),
                           file=(str(path), st.st_size, st.st_mtime_ns))
        return self.db.sheet(sid)

    def _paired(self, m: Measurement, inst: InstrumentConfig, sheet: SheetRow, source: str) -> Pairing:
        schema = load_template(sheet.template)
        derived = {k: v for k, v in measured_values(m).items()
                   if sheet.values.get(f"custom.{k}") is None and k in schema.get("properties", {}).get("custom", {})
                   .get("properties", {})}
        inv = build_invoice(schema, sheet.values, data_name=m.name, default_owner_id=self.cfg.default_owner_id,
                            derived=derived)
        details: dict[str, Any] = {"template": sheet.template}
        if derived:
            details["derived"] = sorted(derived)  # filled from the measurement, the sheet left them empty
        if sheet.file_path:
            details["sheet_file"] = sheet.file_path
        if sheet.template != inst.sheet_template:
            details["note"] = f"sheet template {sheet.template!r} differs from the instrument's {inst.sheet_template!r}"
        return Pairing(PAIRED, inv, schema, sheet_id=sheet.id, source=source, details=details)

    def _unpaired(self, m: Measurement, reason: str) -> Pairing:
        inv = minimal_invoice(m, self.cfg.default_owner_id)
        inv["basic"]["description"] = f"labedge: unpaired ({reason})"
        return Pairing(UNPAIRED, inv, MINIMAL_SCHEMA, source="none", details={"reason": reason})

    def _publish(self) -> None:
        held = self.db.holds(limit=20)
        self.health.set("sheets_held", self.db.count_held())
        self.health.set("sheets_held_list", [h.summary() for h in held])


def fingerprint_path(path: Path) -> str:
    import hashlib
    return hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _changed(m: Measurement) -> str | None:
    for f in m.files:
        try:
            st = f.path.stat()
        except OSError:
            return f"{f.rel} vanished"
        if (st.st_size, st.st_mtime_ns) != (f.size, f.mtime_ns):
            return f"{f.rel} changed"
    return None


def _restat(m: Measurement) -> Measurement | None:
    files = []
    for f in m.files:
        try:
            st = f.path.stat()
        except OSError:
            continue
        files.append(SourceFile(f.path, f.rel, st.st_size, st.st_mtime_ns))
    if not files:
        return None
    return Measurement(m.instrument_id, m.key, files, time.time(), m.watch_root)


class HoldTimer(Worker):
    """Applies the hold policy every few seconds (and after a restart, for holds found again)."""

    def __init__(self, pairer: SheetPairer, interval: float = 2.0) -> None:
        super().__init__("sheet-holds")
        self.pairer, self.interval = pairer, interval

    def loop_once(self) -> None:
        try:
            self.pairer.check_holds()
        except Exception:  # a bad row must not stop the timer; it is logged and retried
            log.exception("checking held measurements failed")
        self.wait(self.interval)
