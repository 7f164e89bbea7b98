"""The dashboard's words in English and Japanese (``?lang=ja|en``, else the browser's Accept-Language)."""
from __future__ import annotations

EN = {
    "title": "labedge fleet", "device": "Device", "all": "All", "attention": "Needs attention",
    "offline": "Offline", "expiring": "Certificates expiring", "state": "State", "since": "Since",
    "version": "Agent", "config": "Config", "queued": "Queued", "failed": "Failed", "oldest": "Oldest waiting",
    "delivered": "Last delivery", "cert": "Certificate", "problems": "Problems", "why": "Why",
    "ago": "ago", "days": "d", "none": "none", "updated": "Updated", "broker_down": "Not connected to the broker",
    "no_devices": "No devices known yet.", "back": "All devices", "deliveries": "Recent deliveries",
    "events": "Online / offline", "package": "Package", "sample": "Sample", "bytes": "Size",
    "translation": "Translation", "stored": "Stored", "host": "Host", "paused": "Intake paused",
    "held": "Waiting for a sheet", "login": "Sign in", "token": "Access token", "wrong_token": "Wrong token",
    "OK": "OK", "WARN": "Warning", "ERROR": "Error", "STALE": "Stale", "OFFLINE": "Offline",
    "omitted": "more not sent", "lang_other": "日本語", "shown": "shown", "of": "of", "online": "online",
    "catalog": "Catalog", "last_seen": "Last seen",
    "r_never_reported": "has never reported a status (known from its packages)",
    "r_stopped": "the agent was stopped", "r_connection_lost": "connection lost (MQTT will)",
    "r_offline": "{v}", "r_silent": "silent for more than 3 heartbeats ({v} s); its last status said online",
    "r_fine": "online, nothing waiting on anyone", "r_failed": "{v} package(s) failed",
    "r_cert_expired": "certificate expired", "r_cert_days": "certificate expires in {v} d",
    "r_config": "config {v}", "r_problems": "{v} problem(s)", "r_paused": "intake paused: {v}",
    "r_held": "{v} measurement(s) wait for a sheet", "r_oldest": "oldest upload waits {v}",
    "r_warnings": "{v} warning(s)", "r_pc_says": "the PC says: {v}",
    "r_revoked": "certificate revoked: the broker refuses it",
}
JA = {
    "title": "labedge フリート", "device": "装置", "all": "すべて", "attention": "要対応",
    "offline": "オフライン", "expiring": "証明書の期限間近", "state": "状態", "since": "時刻",
    "version": "エージェント", "config": "設定", "queued": "待機", "failed": "失敗", "oldest": "最古の待機",
    "delivered": "最終送信", "cert": "証明書", "problems": "問題", "why": "理由",
    "ago": "前", "days": "日", "none": "なし", "updated": "更新", "broker_down": "ブローカーに未接続",
    "no_devices": "まだ装置がありません。", "back": "装置一覧", "deliveries": "最近の送信",
    "events": "オンライン / オフライン", "package": "パッケージ", "sample": "試料", "bytes": "サイズ",
    "translation": "変換", "stored": "保存", "host": "ホスト", "paused": "取り込み停止中",
    "held": "シート待ち", "login": "サインイン", "token": "アクセストークン", "wrong_token": "トークンが違います",
    "OK": "正常", "WARN": "警告", "ERROR": "エラー", "STALE": "応答なし", "OFFLINE": "オフライン",
    "omitted": "件は未送信", "lang_other": "English", "shown": "件表示", "of": "/", "online": "オンライン",
    "catalog": "カタログ", "last_seen": "最終確認",
    "r_never_reported": "状態を一度も送っていません(パッケージからのみ既知)",
    "r_stopped": "エージェントが停止されました", "r_connection_lost": "接続が切れました(MQTT will)",
    "r_offline": "{v}", "r_silent": "ハートビート3回分以上応答がありません({v} 秒)。最後の状態はオンライン",
    "r_fine": "オンライン、対応待ちなし", "r_failed": "{v} 件のパッケージが失敗",
    "r_cert_expired": "証明書の期限切れ", "r_cert_days": "証明書はあと {v} 日で期限切れ",
    "r_config": "設定 {v}", "r_problems": "{v} 件の問題", "r_paused": "取り込み停止中: {v}",
    "r_held": "{v} 件の測定がシート待ち", "r_oldest": "最古のアップロード待ち {v}",
    "r_warnings": "{v} 件の警告", "r_pc_says": "PC の表示: {v}",
    "r_revoked": "証明書失効：ブローカーが接続を拒否します",
}
assert set(EN) == set(JA)


def pick_language(query: str | None, accept: str | None) -> str:
    if query in ("ja", "en"):
        return query
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("ja"):
            return "ja"
        if tag.startswith("en"):
            return "en"
    return "en"


def strings(lang: str) -> dict[str, str]:
    return JA if lang == "ja" else EN
