"""`labedge sheet ...`: list, check, render and serve sample-sheet templates."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from agent.sheets.templates import TemplateError, check_template, list_templates, load_template, \
    load_template_file, title


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sheet", help="sample-sheet templates: list, check, make the HTML page, serve it",
                              description="Sample-sheet templates (RDE invoice.schema.json) and their HTML page.")
    sub = p.add_subparsers(dest="sheet_cmd", required=True, metavar="{list,check,html,serve}")
    q = sub.add_parser("list", help="the shipped templates")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_list)
    q = sub.add_parser("check", help="validate a template (a shipped name or an invoice.schema.json file)")
    q.add_argument("template", help="template name (see `labedge sheet list`) or a path to a .json file")
    q.set_defaults(func=cmd_check)
    q = sub.add_parser("html", help="write the self-contained HTML sheet page (works offline, saves *.sheet.json)")
    q.add_argument("--template", "-t", required=True, help="template name")
    q.add_argument("--out", "-o", type=Path, required=True, help="the .html file to write")
    q.set_defaults(func=cmd_html)
    q = sub.add_parser("serve", help="run only the agent's local page (no upload) for trying sheets out")
    q.add_argument("--config", "-c", type=Path, default=None, help="config file")
    q.set_defaults(func=cmd_serve)


def _err(msg: str) -> int:
    print(f"labedge sheet: {msg}", file=sys.stderr)
    return 2


def cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for name in list_templates():
        try:
            s = load_template(name)
            rows.append({"name": name, "title": title(s),
                         "custom_fields": list(s["properties"].get("custom", {}).get("properties", {}))})
        except TemplateError as exc:
            rows.append({"name": name, "error": str(exc)})
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for r in rows:
            print(f"{r['name']:<16} {r['title']['en'] if 'title' in r else 'INVALID: ' + r['error']}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    arg: str = args.template
    try:
        if arg.endswith(".json") or os.sep in arg or "/" in arg:
            schema = load_template_file(Path(arg))
            problems = check_template(schema)
        else:
            load_template(arg)
            problems = []
    except TemplateError as exc:
        return _err(str(exc))
    if problems:
        for pr in problems:
            print(f"{arg}: {pr}", file=sys.stderr)
        return 1
    print(f"{arg}: valid sample-sheet template")
    return 0


def cmd_html(args: argparse.Namespace) -> int:
    from agent.sheets.html import render_sheet

    try:
        text = render_sheet(args.template, mode="file")
    except TemplateError as exc:
        return _err(str(exc))
    out: Path = args.out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".labedge-", suffix=".html", dir=out.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except OSError as exc:
        return _err(f"{out}: cannot write ({exc.strerror or exc})")
    print(f"wrote {out} ({len(text.encode())} bytes): open it in a browser; it saves <name>.sheet.json files")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import threading

    from agent.config import default_config_path, load_config
    from agent.health import Health
    from agent.package.builder import Spool
    from agent.sheets.pairer import SheetPairer
    from agent.sheets.server import LocalServer
    from agent.state.store import StateStore

    cfg = load_config(args.config or default_config_path(), check_watch_folders=False)
    store = StateStore(cfg.state_db)
    health = Health()
    srv = LocalServer(cfg, store, health, SheetPairer(cfg, store, health), Spool(cfg.spool_dir))
    if srv.port is None:
        return _err(f"cannot listen on 127.0.0.1:{cfg.web.port}; change [web] port")
    srv.start()
    print(f"local page on {srv.url} (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
        srv.join(5)
        store.close()
    return 0
