"""Bruker Esprit ``TRT*`` XML (the .spx file, and the header inside a .bcf) -> flat vendor keys.

Esprit nests ``<ClassInstance Type="TRTSomething" Name="...">``; paths are built from the
``Type`` (with ``[Name]`` when siblings share a Type), so a vocabulary can name
``TRTSpectrumHeader/CalibLin`` whatever the nesting depth of the Esprit version.
Repeated leaf tags (``ResponseFunction``, ``Result/Atom``) keep every value as a list.
"""
from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from translators.safeio import local

#: leaf tags holding bulk data (the spectrum, base64 blobs): counted, never copied into metadata
BULK = {"Channels", "Data", "DetLayers", "Extension", "ExtensionNames"}


def _segment(el: ET.Element, siblings: list[ET.Element]) -> str:
    tag = local(el.tag)
    if tag != "ClassInstance":
        return tag
    typ = el.attrib.get("Type", "ClassInstance")
    same = [s for s in siblings if local(s.tag) == "ClassInstance" and s.attrib.get("Type") == typ]
    if len(same) > 1:
        return f"{typ}[{el.attrib.get('Name') or same.index(el)}]"
    return typ


def flatten_trt(root: ET.Element, max_keys: int = 20000) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def visit(el: ET.Element, prefix: str) -> None:
        children = list(el)
        for k, v in el.attrib.items():
            if not (local(el.tag) == "ClassInstance" and k == "Type"):
                out[f"{prefix}/@{k}" if prefix else f"@{k}"] = v
        if not children:
            txt = (el.text or "").strip()
            if txt and prefix:
                if prefix.rsplit("/", 1)[-1] in BULK:
                    out[prefix] = f"<{len(txt)} characters of data>"
                elif prefix in out:
                    prev = out[prefix]
                    out[prefix] = (prev if isinstance(prev, list) else [prev]) + [txt]
                else:
                    out[prefix] = txt
            return
        for child in children:
            if len(out) >= max_keys:
                return
            seg = _segment(child, children)
            visit(child, f"{prefix}/{seg}" if prefix else seg)

    visit(root, "")
    return out


def find_instance(root: ET.Element, typ: str) -> ET.Element | None:
    for el in root.iter():
        if local(el.tag) == "ClassInstance" and el.attrib.get("Type") == typ:
            return el
    return None
