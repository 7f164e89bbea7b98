"""Official NIMS RDE templates as sample sheets: the instrument's ``rde_template`` names the sheet.

When an instrument's config selects an official template profile (``rde_template =
"nims-aes-survey"``), RDE will check the registration invoice against that template's own
``invoice.schema.json``, so the sheet page offers exactly its ``custom`` fields (labels ja/en,
enums, required flags: the AES template requires ``measurement_method``). labedge ships none of
the template files (MIT, NIMS; translators/profiles): the schema is read from the site's checkout
named by ``rde_templates_dir`` (or ``$LABEDGE_RDE_TEMPLATES`` for the command line), bounded in
size and checked like a shipped template.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_ROOT: Path | None = None


def use_root(root: Path | None) -> None:
    """The site's folder of official template repositories (``Config.rde_templates_dir``)."""
    global _ROOT
    if root != _ROOT:
        _ROOT = Path(root) if root is not None else None
        from agent.sheets.templates import _load_checked

        _load_checked.cache_clear()  # a sheet named nims-... now reads another checkout


def root() -> Path | None:
    env = os.environ.get("LABEDGE_RDE_TEMPLATES")
    return _ROOT if _ROOT is not None else (Path(env) if env else None)


def is_official(name: str) -> bool:
    from translators.profiles import names

    return name in names()


def schema_path(name: str) -> Path:
    from agent.sheets.templates import TemplateError
    from translators.profiles import get

    where = root()
    if where is None:
        raise TemplateError(f"template {name!r} is the official NIMS template's invoice schema: set rde_templates_dir "
                            "(or LABEDGE_RDE_TEMPLATES) to the folder holding the official template repositories")
    return get(name).invoice_schema_path(where)


def load(name: str) -> dict[str, Any]:
    """The official template's invoice schema, checked; raises TemplateError naming the file."""
    from agent.sheets.templates import MAX_TEMPLATE_BYTES, TemplateError, _parse, check_template

    path = schema_path(name)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_TEMPLATE_BYTES + 1)
    except OSError as exc:
        raise TemplateError(f"template {name!r}: the official invoice schema {path} cannot be read "
                            f"({exc.strerror}); is rde_templates_dir the checkout of the official repositories?") from None
    schema = _parse(data, f"template {name!r} ({path})")
    problems = check_template(schema)
    if problems:
        raise TemplateError(f"template {name!r} ({path}) is invalid: " + "; ".join(problems))
    # every official schema says only "固有情報と試料情報のスキーマ": the page's title names the template
    schema["description"] = f"NIMS公式テンプレート {name} / NIMS official template {name}"
    return schema
