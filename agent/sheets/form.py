"""The sheet as a form: fields (common RDE ones + the template's custom ones) and their checks.

The same field list is embedded in the HTML page, whose script applies the same rules, and is
used here to check what comes back (a POST or a ``*.sheet.json``), which is hostile input:
every value is type-checked, bounded in length, and never used as anything but data.
Messages are bilingual ``{ja, en}`` so the page shows the server's verdict in the user's language.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from typing import Any

from agent.sheets.derive import DERIVABLE
from agent.sheets.templates import title

MAX_VALUES = 200
DEFAULT_MAX_LEN = 1000
OWNER_RE = r"^[0-9a-zA-Z]{56}$"
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def L(ja: str, en: str) -> dict[str, str]:
    return {"ja": ja, "en": en}


def _f(fid: str, ja: str, en: str, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"id": fid, "label": L(ja, en), "type": "string", "required": False}
    d.update(kw)
    return d


def common_sections(choices: dict[str, list[dict[str, str]]]) -> list[dict[str, Any]]:
    """The RDE basic and sample blocks, as in the seed templates (①-⑧)."""
    def pick(kind: str) -> list[dict[str, str]]:
        return [{"value": c["id"], "label": c.get("name") or c["id"]} for c in choices.get(kind, [])]

    basic = [
        _f("basic.dateSubmitted", "記入年月日", "Date", format="date", required=True, prefill="today"),
        _f("basic.dataOwnerId", "データ投入者 (RDEユーザーID)", "Data owner (RDE user ID)", pattern=OWNER_RE,
           maxLength=56, choices=pick("owners"), hint=L("56文字の英数字です", "must be 56 letters/digits"),
           placeholder=L("56文字の英数字。空欄なら装置の既定値", "56 letters/digits; empty = this PC's default")),
        _f("datasetId", "データセット", "Dataset", maxLength=100, pattern=r"^[A-Za-z0-9._-]*$",
           hint=L("英数字と . _ - のみ", "letters, digits, '.', '_' and '-' only"),
           choices=pick("datasets")),
        _f("basic.experimentId", "課題番号", "Proposal", maxLength=100, choices=pick("proposals")),
        _f("basic.dataName", "データ名", "Data name", maxLength=255,
           placeholder=L("空欄ならファイル名", "empty = the file name")),
    ]
    sample = [
        _f("sample.names", "試料名", "Sample name", required=True, maxLength=255),
        _f("sample.composition", "組成", "Composition", maxLength=255,
           placeholder=L("例: Fe-20Cr-10Ni", "e.g. Fe-20Cr-10Ni")),
        _f("sample.description", "試料の説明", "Sample description", maxLength=2000, widget="textarea"),
        _f("basic.description", "計測の目的・説明", "Purpose of the measurement", maxLength=2000, widget="textarea"),
    ]
    return [{"id": "basic", "label": L("基本情報", "Basic information"), "fields": basic},
            {"id": "sample", "label": L("試料情報", "Sample"), "fields": sample}]


def custom_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    custom = schema.get("properties", {}).get("custom", {})
    req = set(custom.get("required", []))
    out = []
    for key, f in custom.get("properties", {}).items():
        opts = f.get("options", {})
        d: dict[str, Any] = {"id": f"custom.{key}", "label": f["label"], "type": f["type"], "required": key in req}
        for k in ("format", "enum", "const", "default", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                  "minLength", "maxLength", "pattern"):
            if k in f:
                d[k] = f[k]
        if "x-enumLabels" in f:
            d["enumLabels"] = f["x-enumLabels"]
        if "unit" in opts:
            d["unit"] = opts["unit"]
        if "placeholder" in opts:
            d["placeholder"] = opts["placeholder"]
        elif key in DERIVABLE and not d["required"]:
            d["placeholder"] = DERIVABLE[key]  # filled from the measurement if left empty (agent.sheets.derive)
        if opts.get("widget") == "textarea" or f.get("format") == "markdown":
            d["widget"] = "textarea"
        out.append(d)
    return out


def form_model(name: str, schema: dict[str, Any], choices: dict[str, list[dict[str, str]]] | None = None
               ) -> dict[str, Any]:
    sections = common_sections(choices or {})
    custom = schema.get("properties", {}).get("custom", {})
    sections.append({"id": "custom", "label": custom.get("label", L("固有情報", "Custom information")),
                     "fields": custom_fields(schema)})
    return {"template": name, "title": title(schema), "sections": sections}


def fields_of(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for s in model["sections"] for f in s["fields"]}


class SheetInvalid(Exception):
    """Values do not satisfy the template; ``errors`` maps field id -> {ja, en} message."""

    def __init__(self, errors: dict[str, dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v['en']}" for k, v in errors.items()))


def validate_values(model: dict[str, Any], values: Any) -> dict[str, Any]:
    """Clean, typed values for every field of ``model`` (None when empty); raises SheetInvalid."""
    if not isinstance(values, dict):
        raise SheetInvalid({"_": L("値はJSONオブジェクトである必要があります", "values must be a JSON object")})
    if len(values) > MAX_VALUES:
        raise SheetInvalid({"_": L("項目が多すぎます", f"too many values (more than {MAX_VALUES})")})
    clean: dict[str, Any] = {}
    errors: dict[str, dict[str, str]] = {}
    for fid, f in fields_of(model).items():
        try:
            clean[fid] = check_value(f, values.get(fid))
        except ValueError as exc:
            errors[fid] = exc.args[0]
    if errors:
        raise SheetInvalid(errors)
    return clean


def check_value(f: dict[str, Any], v: Any) -> Any:
    """The typed value of ``v`` for field ``f``; raises ValueError({ja, en})."""
    if isinstance(v, str):
        v = v.strip()
    if v is None or v == "":
        if f.get("required"):
            raise ValueError(L("必須項目です", "required"))
        return None
    t = f.get("type", "string")
    if t == "boolean":
        if isinstance(v, bool):
            out: Any = v
        elif v in ("true", "false"):
            out = v == "true"
        else:
            raise ValueError(L("はい/いいえを選んでください", "must be true or false"))
    elif t in ("integer", "number"):
        out = _number(v, t)
        _range(f, out)
    else:
        if not isinstance(v, str):
            raise ValueError(L("文字列である必要があります", "must be text"))
        out = _string(f, v)
    if "enum" in f and out not in f["enum"]:
        raise ValueError(L("選択肢から選んでください", "choose one of: " + ", ".join(map(str, f["enum"]))))
    if "const" in f and out != f["const"]:
        raise ValueError(L(f"{f['const']} 固定です", f"must be {f['const']}"))
    return out


def _number(v: Any, t: str) -> int | float:
    if isinstance(v, bool):
        raise ValueError(L("数値を入力してください", "must be a number"))
    if isinstance(v, str):
        v = unicodedata.normalize("NFKC", v)  # "１２０" from a Japanese IME is 120
        if len(v) > 40:
            raise ValueError(L("数値を入力してください", "must be a number"))
        try:
            v = int(v) if t == "integer" and re.fullmatch(r"[+-]?\d+", v) else float(v)
        except ValueError:
            raise ValueError(L("数値を入力してください", "must be a number")) from None
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(L("数値を入力してください", "must be a number"))
    if t == "integer":
        if isinstance(v, float) and not v.is_integer():
            raise ValueError(L("整数を入力してください", "must be a whole number"))
        return int(v)
    return float(v)


def _range(f: dict[str, Any], n: float) -> None:
    if "minimum" in f and n < f["minimum"]:
        raise ValueError(L(f"{f['minimum']} 以上にしてください", f"must be at least {f['minimum']}"))
    if "maximum" in f and n > f["maximum"]:
        raise ValueError(L(f"{f['maximum']} 以下にしてください", f"must be at most {f['maximum']}"))
    if "exclusiveMinimum" in f and n <= f["exclusiveMinimum"]:
        raise ValueError(L(f"{f['exclusiveMinimum']} より大きくしてください",
                           f"must be greater than {f['exclusiveMinimum']}"))
    if "exclusiveMaximum" in f and n >= f["exclusiveMaximum"]:
        raise ValueError(L(f"{f['exclusiveMaximum']} 未満にしてください", f"must be less than {f['exclusiveMaximum']}"))


def _string(f: dict[str, Any], v: str) -> str:
    limit = f.get("maxLength", DEFAULT_MAX_LEN)
    if len(v) > limit:
        raise ValueError(L(f"{limit} 文字以内にしてください", f"at most {limit} characters"))
    if len(v) < f.get("minLength", 0):
        raise ValueError(L(f"{f['minLength']} 文字以上にしてください", f"at least {f['minLength']} characters"))
    if _CONTROL_RE.search(v):
        raise ValueError(L("制御文字は使えません", "control characters are not allowed"))
    fmt = f.get("format")
    if fmt == "date":
        try:
            if not _DATE_RE.match(v):
                raise ValueError
            dt.date.fromisoformat(v)
        except ValueError:
            raise ValueError(L("日付は YYYY-MM-DD で入力してください", "date must be YYYY-MM-DD")) from None
    elif fmt == "time" and not _TIME_RE.match(v):
        raise ValueError(L("時刻は HH:MM または HH:MM:SS で入力してください", "time must be HH:MM or HH:MM:SS"))
    elif fmt == "uri" and not _URI_RE.match(v):
        raise ValueError(L("URIの形式ではありません", "must be a URI such as https://..."))
    elif fmt == "uuid" and not _UUID_RE.match(v):
        raise ValueError(L("UUIDの形式ではありません", "must be a UUID"))
    if "pattern" in f and not re.search(f["pattern"], v):
        raise ValueError(f.get("hint") or L("形式が正しくありません", "has the wrong form"))
    return v
