"""The ONE place that decides what the lab user is told: a state, the reason, and what to do.

`labedge status` (text and ``--json`` as ``summary``), the tray and the local page all show the value
``summarize`` returns, so they can never disagree (the tray once read ``sheets.held_count`` while the
status said ``sheets.held`` and stayed grey while a measurement waited for a sheet).

States, most urgent first when several apply: ``error`` (the agent is not running, packages failed),
``needs attention`` (a measurement needs a sheet, intake stopped, a folder cannot be watched, the
certificate), ``paused`` (by the user, or by the facility with its reason), ``offline`` (not set up to upload, the facility cannot be
reached, its receiver does not answer or is full), ``working``, ``up to date``. Reasons and actions are
plain words in English and Japanese; technical details (broker addresses, errors) go in ``detail``.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from agent.intake import human
from wire.tls import CERT_REJECTED

UP_TO_DATE, WORKING, PAUSED, OFFLINE, ATTENTION, ERROR = \
    "up to date", "working", "paused", "offline", "needs attention", "error"
STATES = (UP_TO_DATE, WORKING, PAUSED, OFFLINE, ATTENTION, ERROR)
STATE_WORDS = {UP_TO_DATE: {"en": "up to date", "ja": "最新"}, WORKING: {"en": "working", "ja": "処理中"},
               PAUSED: {"en": "paused", "ja": "一時停止中"}, OFFLINE: {"en": "offline", "ja": "オフライン"},
               ATTENTION: {"en": "needs attention", "ja": "要確認"}, ERROR: {"en": "error", "ja": "エラー"}}
LANGS = ("en", "ja")


@dataclass(frozen=True)
class Summary:
    state: str
    reason: dict[str, str]
    action: dict[str, str]
    detail: str | None = None   # technical words for whoever supports the user (not translated)

    def text(self, field: str, lang: str) -> str:
        if field == "state":
            return STATE_WORDS[self.state][lang]
        return getattr(self, field)[lang]

    def as_dict(self) -> dict[str, Any]:
        """``{state, reason, action}`` in English, the same in Japanese under ``ja``, and ``detail``."""
        return {"state": self.state, "reason": self.reason["en"], "action": self.action["en"],
                "ja": {"state": STATE_WORDS[self.state]["ja"], "reason": self.reason["ja"],
                       "action": self.action["ja"]},
                "detail": self.detail}


def shorten(text: str, n: int) -> str:
    """At most ``n`` characters, cut at a word (never mid-word unless one word is that long), with "…"."""
    if len(text) <= n:
        return text
    head = text[: n - 1]
    space = head.rfind(" ")
    return (head[:space] if space > n // 2 else head).rstrip(" ,:;—(") + "…"


def _s(state: str, en: str, ja: str, act_en: str, act_ja: str, detail: str | None = None) -> Summary:
    return Summary(state, {"en": en, "ja": ja}, {"en": act_en, "ja": act_ja}, detail)


def _minutes(seconds: float) -> tuple[str, str]:
    if seconds < 90:
        n = max(0, round(seconds))
        return f"{n} s", f"{n} 秒"
    n = round(seconds / 60)
    return f"{n} min", f"{n} 分"


def _held(st: dict[str, Any]) -> Summary | None:
    sh = st.get("sheets") if isinstance(st.get("sheets"), dict) else {}
    n = int(sh.get("held") or 0)
    if not n:
        return None
    first = (sh.get("held_list") or [{}])[0]
    name = shorten(str(first.get("name") or ""), 48)
    en = f"{n} measurement{'s' if n > 1 else ''} need{'' if n > 1 else 's'} a sample sheet" + (f" ({name})" if name else "")
    ja = f"{n} 件の測定にサンプルシートが必要です" + (f"（{name}）" if name else "")
    act_en, act_ja = "fill or pick a sheet on the local page", "ローカルページでシートを記入または選択してください"
    due = first.get("unpaired_at")
    if isinstance(due, (int, float)):
        left_en, left_ja = _minutes(due - time.time())
        act_en += f"; it goes out unpaired in {left_en}"
        act_ja += f"（{left_ja}後にシートなしで送信されます）"
    return _s(ATTENTION, en, ja, act_en, act_ja)


def _transfers(up: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in up.get("transfers") or [] if isinstance(t, dict)]


def summarize(st: dict[str, Any]) -> Summary:
    """What to tell the user about the status dict ``st`` (from ``agent.status.build_status``)."""
    p = st.get("packages") or {}
    queued, uploading, failed = int(p.get("queued", 0)), int(p.get("uploading", 0)), int(p.get("failed", 0))
    agent = st.get("agent") or {}
    if not agent.get("running"):
        return _s(ERROR, "labedge is not running: new measurements are not collected",
                  "labedge が動いていません。新しい測定は取り込まれません",
                  "start the labedge service, or ask the facility", "labedge サービスを起動するか施設に連絡してください",
                  agent.get("note"))
    if failed:
        err = ((st.get("failed") or [{}])[0].get("error") or "")[:300] or None
        return _s(ERROR, f"{failed} package{'s' if failed > 1 else ''} could not be uploaded",
                  f"{failed} 件のパッケージを送信できませんでした",
                  "choose Retry on the local page; if it fails again, tell the facility",
                  "ローカルページで再送を選んでください。再び失敗したら施設に連絡してください", err)
    held = _held(st)
    if held is not None:
        return held
    intake = st.get("intake") or {}
    if intake.get("paused"):
        return _s(ATTENTION, "not taking new measurements", "新しい測定を受け付けていません",
                  "free disk space on this PC; collection resumes by itself",
                  "この PC の空き容量を増やしてください。自動的に再開します", str(intake.get("reason") or "")[:300])
    problems = [pr for pr in st.get("problems") or [] if isinstance(pr, dict)]
    local = [pr for pr in problems if not str(pr.get("key", "")).startswith("upload:")]
    for kind in ("error", "warning"):
        pr = next((x for x in local if x.get("kind") == kind), None)
        if pr is not None:
            return _s(ATTENTION, "something on this PC needs a look", "この PC で確認が必要なことがあります",
                      "open the local page for details", "詳細はローカルページを見てください",
                      str(pr.get("message", ""))[:300])
    cert = st.get("certificate") if isinstance(st.get("certificate"), dict) else {}
    if cert.get("warning"):
        return _s(ATTENTION, "this PC's certificate needs renewing", "この PC の証明書の更新が必要です",
                  "tell the facility (labedge enroll makes a new request)", "施設に連絡してください（labedge enroll）",
                  str(cert["warning"])[:300])
    ctl = st.get("control") or {}
    if ctl.get("paused") and ctl.get("by") == "facility":  # a remote `pause`: the administrator's reason
        why = shorten(str(ctl.get("reason") or "no reason given"), 120)
        return _s(PAUSED, f"by the facility: {why}", f"施設による一時停止：{why}",
                  "nothing to do; the facility resumes it (ask them if it takes long)",
                  "操作は不要です。施設が再開します（長引く場合は施設に連絡してください）")
    if ctl.get("paused"):
        return _s(PAUSED, "by the user: new measurements wait until you resume",
                  "ユーザーによる一時停止です。再開するまで新しい測定は待機します",
                  "choose Resume to continue", "再開を選ぶと続行します")
    waiting = queued + uploading
    if st.get("offline") or st.get("upload") is None and agent.get("mode") == "offline":
        return _s(OFFLINE, "this PC keeps measurements locally; it is not set up to upload",
                  "この PC は測定データを保存するだけで、送信する設定になっていません",
                  "nothing to do; ask the facility if the data should be uploaded",
                  "操作は不要です。送信が必要なら施設に相談してください")
    up = st.get("upload") if isinstance(st.get("upload"), dict) else {}
    refused = str((up or {}).get("last_error") or "")
    if up and up.get("connected") is False and refused.startswith(CERT_REJECTED):  # revoked, expired, other CA
        return _s(ATTENTION, "the facility does not accept this PC's certificate",
                  "施設がこの PC の証明書を受け付けていません",
                  "tell the facility; measurements are kept on this PC until it has a new certificate",
                  "施設に連絡してください。新しい証明書が届くまで測定はこの PC に保存されます", refused[:300])
    if up and up.get("connected") is False:
        return _s(OFFLINE, "will upload when the facility is reachable",
                  "施設に接続できしだい送信します",
                  "nothing to do; measurements are kept on this PC. If this lasts hours, tell the facility",
                  "操作は不要です。測定はこの PC に保存されます。長く続く場合は施設に連絡してください",
                  str(up.get("last_error") or "")[:300] or None)
    transfers = _transfers(up)
    busy = next((pr for pr in problems if pr.get("key") == "upload:receiver"), None)
    if busy is not None or any(t.get("receiver_busy") for t in transfers):
        return _s(OFFLINE, "uploads wait: the facility cannot take data right now",
                  "送信待ち：施設側が今はデータを受け取れません",
                  "nothing to do; nothing is lost and uploads resume by themselves",
                  "操作は不要です。データは失われず、自動的に再開します",
                  str((busy or {}).get("message") or "")[:300] or None)
    if transfers and all(t.get("waiting_for_receiver") for t in transfers):
        return _s(OFFLINE, "uploads wait: the facility's receiver is not answering",
                  "送信待ち：施設の受信側が応答していません",
                  "nothing to do; packages are kept here. If this lasts hours, tell the facility",
                  "操作は不要です。データはこの PC に保存されます。長く続く場合は施設に連絡してください",
                  "no receiver is subscribed at the broker")
    pending = int(st.get("measurements_waiting") or 0)
    settling = sum(len(v) for k, v in (st.get("facts") or {}).items() if k.startswith("settling:")
                   and isinstance(v, list))
    if waiting or pending or st.get("progress") or settling:
        return _working(waiting, pending, settling, transfers)
    n = int(p.get("delivered", 0))
    return _s(UP_TO_DATE, f"everything is uploaded ({n} package{'s' if n != 1 else ''} delivered)",
              f"すべて送信済みです（{n} 件）", "nothing to do", "操作は不要です")


def _working(waiting: int, pending: int, settling: int, transfers: list[dict[str, Any]]) -> Summary:
    if transfers:
        done = sum(int(t.get("done_bytes") or 0) for t in transfers)
        total = sum(int(t.get("total_bytes") or 0) for t in transfers)
        pct = f" {100 * done // total}%" if total else ""
        en = f"uploading {waiting} package{'s' if waiting != 1 else ''}:{pct} of {human(total)}"
        ja = f"{waiting} 件を送信中：{human(total)} の{pct.strip() or '0%'}"
    elif waiting:
        en, ja = f"{waiting} package{'s' if waiting != 1 else ''} to upload", f"{waiting} 件の送信待ち"
    elif pending:
        en = f"preparing {pending} new measurement{'s' if pending != 1 else ''}"
        ja = f"{pending} 件の新しい測定を準備中"
    elif settling:
        en, ja = "new files are arriving", "新しいファイルを受信中"
    else:
        en, ja = "preparing a measurement", "測定を準備中"
    return _s(WORKING, en, ja, "nothing to do; keep this PC on until it is done",
              "操作は不要です。終わるまで PC の電源を入れたままにしてください")


def user_language(env: dict[str, str] | None = None) -> str:
    """ja or en from the desktop's locale (LC_ALL, LC_MESSAGES, LANG), for the tray."""
    env = os.environ if env is None else env
    for key in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        v = env.get(key)
        if v:
            return "ja" if v.lower().startswith("ja") else "en"
    if os.name == "nt":  # pragma: no cover - Windows only
        import locale
        return "ja" if (locale.getdefaultlocale()[0] or "").lower().startswith("ja") else "en"
    return "en"
