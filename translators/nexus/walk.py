"""A bounded, link-safe walk over a NeXus/HDF5 file.

Hostile-input rules: external links and soft links are recorded, never followed; virtual
datasets and datasets with external raw storage map onto other files, so their values are
never read; every read is bounded by element count and a total byte budget.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

SMALL_ELEMENTS = 32          # datasets up to this size go into `original` verbatim
MAX_TABLE_POINTS = 2_000_000  # 1-D columns longer than this are not tabulated
MAX_ARRAY_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64


@dataclass
class Node:
    path: str
    parent_class: str      # NX_class of the group holding this dataset
    name: str
    dset: Any              # h5py.Dataset (never dereferenced through a link)
    attrs: dict[str, Any]
    value: Any = None      # small values only
    readable: bool = True  # False for virtual / external-storage datasets
    shape: tuple[int, ...] = ()
    dtype: str = ""


@dataclass
class Walk:
    root_attrs: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> {class, attrs}
    datasets: dict[str, Node] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    bytes_read: int = 0

    def budget(self, nbytes: int) -> bool:
        if self.bytes_read + nbytes > MAX_TOTAL_BYTES:
            return False
        self.bytes_read += nbytes
        return True


def plain(v: Any) -> Any:
    """HDF5 value -> JSON-friendly Python value (bytes decoded, 1-element arrays unwrapped)."""
    if isinstance(v, (bytes, np.bytes_)):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "SOU" or v.dtype.kind == "V":
            items = [plain(x) for x in v.ravel().tolist()]
            return items[0] if len(items) == 1 else items
        if v.size == 1:
            return plain(v.reshape(-1)[0])
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            return [plain(x) for x in v.ravel().tolist()]
        return v.tolist()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)  # NaN/inf are not JSON; keep them readable
    return v


def attrs_of(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        for k in obj.attrs:
            try:
                out[str(k)] = plain(obj.attrs[k])
            except Exception:  # undecodable attribute: keep its name only
                out[str(k)] = "<unreadable>"
    except Exception:
        pass
    return out


def walk(f: h5py.File) -> Walk:
    w = Walk(root_attrs=attrs_of(f))
    seen: set[Any] = set()
    _walk_group(f, "", "NXroot", w, seen, 0)
    return w


def _walk_group(g: h5py.Group, path: str, cls: str, w: Walk, seen: set[Any], depth: int) -> None:
    if depth > MAX_DEPTH:
        w.warnings.append(f"{path}: deeper than {MAX_DEPTH} levels; not walked further")
        return
    for name in g:
        if len(w.datasets) + len(w.groups) > MAX_NODES:
            w.warnings.append(f"more than {MAX_NODES} objects; the rest is not listed")
            return
        p = f"{path}/{name}"
        link = g.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            w.links[p] = f"external link to {link.filename}:{link.path}"
            w.warnings.append(f"{p}: external link to '{link.filename}' not followed "
                              "(links to other files are never opened)")
            continue
        if isinstance(link, h5py.SoftLink):
            w.links[p] = f"soft link to {link.path}"
            continue
        obj = g.get(name)
        if obj is None:
            continue
        key = obj.id  # ObjectID compares by file and object address: detects hard-link cycles
        if key in seen and isinstance(obj, h5py.Group):
            w.links[p] = "hard link to an already listed group"
            continue
        seen.add(key)
        a = attrs_of(obj)
        if isinstance(obj, h5py.Group):
            ncls = str(a.get("NX_class", ""))
            w.groups[p] = {"class": ncls, "attrs": a}
            _walk_group(obj, p, ncls, w, seen, depth + 1)
        elif isinstance(obj, h5py.Dataset):
            w.datasets[p] = _node(obj, p, cls, name, a, w)


def _node(d: h5py.Dataset, p: str, cls: str, name: str, a: dict[str, Any], w: Walk) -> Node:
    n = Node(p, cls, name, d, a, shape=tuple(d.shape or ()), dtype=str(d.dtype))
    if d.is_virtual or d.external:
        n.readable = False
        w.warnings.append(f"{p}: {'virtual' if d.is_virtual else 'external-storage'} dataset "
                          "maps onto other files; its values were not read")
        return n
    try:
        if d.size <= SMALL_ELEMENTS and d.dtype.kind in "biufSUOc":
            nbytes = max(d.size, 1) * max(d.dtype.itemsize, 8)
            if w.budget(nbytes):
                n.value = plain(d[()])
                if d.dtype.kind == "O" and isinstance(n.value, (list, str)):
                    n.value = n.value if isinstance(n.value, str) else [str(x)[:200] for x in n.value]
    except Exception as e:  # unreadable (filter missing, corrupt chunk): name it, go on
        n.readable = False
        w.warnings.append(f"{p}: could not be read ({type(e).__name__})")
    return n


def read_array(n: Node, w: Walk, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray | None:
    """Read a whole dataset if it is numeric, local and within the byte budgets."""
    d = n.dset
    if not n.readable or d.dtype.kind not in "biuf":
        return None
    nbytes = int(d.size) * d.dtype.itemsize
    if nbytes > max_bytes or not w.budget(nbytes):
        w.warnings.append(f"{n.path}: {nbytes} bytes exceeds the read budget; not copied")
        return None
    try:
        return np.asarray(d[()])
    except Exception as e:
        w.warnings.append(f"{n.path}: could not be read ({type(e).__name__})")
        return None
