"""One language per page (ja or en), chosen like the sheets do: the user's switch, else the browser's.

The switch stores ``labedge.lang`` in localStorage (read by the sheet page) and in a ``labedge_lang``
cookie (read here, so the server renders the queue page and its messages in that language).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

LANGS = ("ja", "en")
_COOKIE = re.compile(r"(?:^|;\s*)labedge_lang=(ja|en)(?:;|$)")


def pick_lang(headers: Mapping[str, str] | Any, query: Mapping[str, list[str]] | None = None) -> str:
    q = (query or {}).get("lang") or [""]
    if q[0] in LANGS:
        return q[0]
    m = _COOKIE.search(headers.get("Cookie", "") or "")
    if m:
        return m.group(1)
    for part in (headers.get("Accept-Language", "") or "").split(","):  # in the browser's order
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("ja"):
            return "ja"
        if tag.startswith("en"):
            return "en"
    return "en"


# The queue page's words. Keys are short names; every entry has both languages.
WORDS: dict[str, dict[str, str]] = {
    "status": {"en": "Status", "ja": "状態"},
    "pause": {"en": "Pause", "ja": "一時停止"},
    "resume": {"en": "Resume", "ja": "再開"},
    "details": {"en": "Details", "ja": "詳細"},
    "queue": {"en": "Queue", "ja": "キュー"},
    "queued": {"en": "waiting to upload", "ja": "送信待ち"},
    "uploading": {"en": "uploading", "ja": "送信中"},
    "delivered": {"en": "delivered", "ja": "送信済み"},
    "failed": {"en": "failed", "ja": "失敗"},
    "superseded": {"en": "superseded by a later version (never sent)", "ja": "新しい版で置換（未送信）"},
    "retry": {"en": "Retry failed", "ja": "失敗分を再送"},
    "instruments": {"en": "Instruments and sheets", "ja": "装置とシート"},
    "instrument": {"en": "Instrument", "ja": "装置"},
    "template": {"en": "Template", "ja": "テンプレート"},
    "active": {"en": "Active sheet", "ja": "有効なシート"},
    "none": {"en": "none", "ja": "なし"},
    "open_sheet": {"en": "Open sheet", "ja": "シートを開く"},
    "settling": {"en": "Arriving (settling)", "ja": "到着中（書き込み完了待ち）"},
    "settling_hint": {"en": "The instrument may still be writing these files; they are packaged once they "
                      "stop changing.", "ja": "装置がまだ書き込み中の可能性があります。変化が止まるとパッケージになります。"},
    "held": {"en": "Needs a sample sheet", "ja": "シート待ち"},
    "measurement": {"en": "Measurement", "ja": "データ"},
    "since": {"en": "Waiting since", "ja": "待機開始"},
    "actions": {"en": "Actions", "ja": "操作"},
    "fill": {"en": "Fill sheet", "ja": "記入"},
    "pick": {"en": "pick a sheet", "ja": "シートを選ぶ"},
    "apply": {"en": "Apply", "ja": "適用"},
    "unpaired_in": {"en": "goes out unpaired in", "ja": "シートなしで送信まで"},
    "kept": {"en": "kept until a sheet is given", "ja": "シートが来るまで保持"},
    "packages": {"en": "Packages", "ja": "パッケージ"},
    "files": {"en": "Files", "ja": "ファイル"},
    "sample": {"en": "Sample and sheet", "ja": "試料とシート"},
    "taken": {"en": "Measured", "ja": "測定日時"},
    "state": {"en": "State", "ja": "状態"},
    "unpaired": {"en": "unpaired (no sheet)", "ja": "シートなし"},
    "attachment_of": {"en": "attachment of", "ja": "添付先"},
    "left": {"en": "left", "ja": "残り"},
    "none_yet": {"en": "None yet.", "ja": "まだありません。"},
    "nothing": {"en": "None.", "ja": "ありません。"},
    "attach": {"en": "Attach files to a measurement", "ja": "測定にファイルを添付"},
    "attach_to": {"en": "Measurement", "ja": "添付先の測定"},
    "attach_pick": {"en": "choose the measurement", "ja": "測定を選んでください"},
    "attach_files": {"en": "Files (photos, notes: .txt .csv .md .png .jpg)", "ja": "ファイル（写真・メモ: .txt .csv .md .png .jpg）"},
    "attach_btn": {"en": "Attach", "ja": "添付"},
    "rule": {"en": "paired by", "ja": "対応付け"},
    "rule:picked": {"en": "picked on this page", "ja": "このページで選択"},
    "rule:sheet-file": {"en": "sheet file beside the data", "ja": "データの隣のシートファイル"},
    "rule:active-sheet": {"en": "the instrument's active sheet", "ja": "装置の有効なシート"},
    "rule:none": {"en": "no sheet", "ja": "シートなし"},
    "paused_user": {"en": "Paused by the user: new measurements wait until you resume.",
                    "ja": "ユーザーが一時停止しました。再開するまで新しい測定は待機します。"},
    "paused_facility": {"en": "Paused by the facility: {reason}. New measurements wait until it is resumed.",
                        "ja": "施設により一時停止中：{reason}。再開されるまで新しい測定は待機します。"},
    "waiting_n": {"en": "{n} new measurement(s) being prepared (settling, paused or waiting for a sheet).",
                  "ja": "新しい測定 {n} 件を準備中（書き込み完了待ち・一時停止・シート待ち）。"},
    "cert": {"en": "Certificate", "ja": "証明書"},
    "lang": {"en": "Language", "ja": "言語"},
}


def w(key: str, lang: str, **kw: Any) -> str:
    text = WORDS[key][lang]
    return text.format(**kw) if kw else text


def both(en: str, ja: str) -> dict[str, str]:
    """A server message in both languages (refusals, results): the page shows the one it speaks."""
    return {"en": en, "ja": ja}
