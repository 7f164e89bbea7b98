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
    "configuration": "Configuration", "pushes": "Recent configuration pushes", "push": "Push",
    "cfg_version": "Version", "signer": "Signer", "targets": "Targets", "when": "When", "result": "Result",
    "reason": "Reason", "results": "Device results", "reported_config": "Config (as the device reports it)",
    "last_push": "Last push", "device_pushes": "Configuration pushes to this device", "desired": "desired",
    "in_force": "in force", "from_status": "(from the device's status)", "more_results": "more device(s) not listed",
    "target_all": "all devices", "target_group": "group", "target_devices": "devices", "pushes_limit": "newest {v}",
    "p_applied": "applied", "p_refused": "refused", "p_rolled_back": "rolled back", "p_sent": "no answer yet",
    "p_no_answer": "no answer yet", "p_waiting": "waiting for its wave",
    "p_not_sent": "not sent (the rollout stopped before its wave)",
    "ps_running": "running", "ps_aborting": "aborting", "ps_done": "done", "ps_stopped": "stopped",
    "ps_aborted": "aborted", "ps_incomplete": "incomplete",
    "h_absent": "No configuration pushed yet.",
    "h_newer": "The push history was written by a newer labedge (migrations {v}): upgrade this dashboard to see it.",
    "h_lacking": "The push history lacks migrations {v}: run `labedge fleet config status` once, which applies them.",
    "h_unreadable": "The push history cannot be read: {v}", "h_no_catalog": "No catalog: {v}",
    "r_push_refused": "refused config version {v}", "r_push_rolled_back": "rolled back config version {v}",
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
    "configuration": "設定配布", "pushes": "最近の設定配布", "push": "配布",
    "cfg_version": "バージョン", "signer": "署名者", "targets": "対象", "when": "日時", "result": "結果",
    "reason": "理由", "results": "装置ごとの結果", "reported_config": "設定(装置の報告)",
    "last_push": "最新の配布", "device_pushes": "この装置への設定配布", "desired": "目標",
    "in_force": "適用中", "from_status": "(装置の状態より)", "more_results": "台は表示していません",
    "target_all": "全装置", "target_group": "グループ", "target_devices": "装置", "pushes_limit": "最新 {v} 件",
    "p_applied": "適用済み", "p_refused": "拒否", "p_rolled_back": "ロールバック", "p_sent": "未応答",
    "p_no_answer": "未応答", "p_waiting": "順番待ち",
    "p_not_sent": "未送信(その順番の前にロールアウトが停止)",
    "ps_running": "実行中", "ps_aborting": "中止処理中", "ps_done": "完了", "ps_stopped": "停止",
    "ps_aborted": "中止", "ps_incomplete": "未完了",
    "h_absent": "まだ設定は配布されていません。",
    "h_newer": "配布履歴はより新しい labedge が書いたものです(マイグレーション {v})。表示するにはこのダッシュボードを更新してください。",
    "h_lacking": "配布履歴にマイグレーション {v} がありません。`labedge fleet config status` を一度実行すると適用されます。",
    "h_unreadable": "配布履歴を読めません: {v}", "h_no_catalog": "カタログがありません: {v}",
    "r_push_refused": "設定バージョン {v} を拒否", "r_push_rolled_back": "設定バージョン {v} をロールバック",
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
