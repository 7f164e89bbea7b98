"""A tiny, safe reader for the Perl data literals in Athena project files.

Athena (Demeter) saves projects as Perl source: ``@args = ('key', 'value', ...);``,
``@x = ('1.0', ...);``, ``[record]`` markers. We never evaluate anything: a tokenizer
turns strings, numbers, barewords and brackets into Python values, and anything else
(function calls, interpolation, code) is an error naming the line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

from translators.contract import CorruptFile

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\f\v]+|\n)
  | (?P<comment>\#[^\n]*)
  | (?P<var>[$@%][A-Za-z_]\w*(?:::\w+)*)
  | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<sq>'(?:[^'\\]|\\.)*')
  | (?P<dq>"(?:[^"\\]|\\.)*")
  | (?P<op>=>|[=,;()\[\]{}])
  | (?P<word>[A-Za-z_]\w*)
""", re.VERBOSE | re.DOTALL)
_DQ_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$", "@": "@", "0": "\0"}
MAX_DEPTH = 32


@dataclass
class Token:
    kind: str
    value: Any
    line: int


def tokenize(src: str, name: str) -> Iterator[Token]:
    pos, line, n = 0, 1, len(src)
    while pos < n:
        m = _TOKEN.match(src, pos)
        if not m:
            raise CorruptFile(f"{name}: line {line}: unexpected text {src[pos:pos + 20]!r} "
                              "(only Perl data literals are accepted)")
        kind, text = m.lastgroup, m.group()
        if kind == "sq":
            yield Token("str", re.sub(r"\\([\\'])", r"\1", text[1:-1]), line)
        elif kind == "dq":
            yield Token("str", re.sub(r"\\(.)", lambda e: _DQ_ESC.get(e[1], "\\" + e[1]),
                                      text[1:-1]), line)
        elif kind == "num":
            yield Token("num", float(text) if any(ch in text for ch in ".eE") else int(text), line)
        elif kind in ("var", "op", "word"):
            yield Token(kind, text, line)
        line += text.count("\n")
        pos = m.end()


class _Parser:
    def __init__(self, src: str, name: str) -> None:
        self.toks = list(tokenize(src, name))
        self.i, self.name = 0, name

    def peek(self) -> Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Token:
        t = self.peek()
        if t is None:
            last = self.toks[-1].line if self.toks else 1
            raise CorruptFile(f"{self.name}: line {last}: project file ends inside a statement "
                              "(truncated)")
        self.i += 1
        return t

    def expect(self, op: str) -> None:
        t = self.take()
        if t.value != op:
            raise CorruptFile(f"{self.name}: line {t.line}: expected {op!r}, found {t.value!r}")

    def value(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise CorruptFile(f"{self.name}: nesting deeper than {MAX_DEPTH} levels")
        t = self.take()
        if t.kind in ("str", "num"):
            return t.value
        if t.kind == "word":
            if self.peek() is not None and self.peek().value == "(":
                raise CorruptFile(f"{self.name}: line {t.line}: function call {t.value}(...) "
                                  "is not a data literal")
            return None if t.value == "undef" else t.value
        if t.value in ("(", "["):
            return self.items(")" if t.value == "(" else "]", depth)
        if t.value == "{":
            flat = self.items("}", depth)
            return {str(flat[k]): flat[k + 1] if k + 1 < len(flat) else None
                    for k in range(0, len(flat), 2)}
        raise CorruptFile(f"{self.name}: line {t.line}: unexpected {t.value!r} in a value")

    def items(self, close: str, depth: int) -> list[Any]:
        out: list[Any] = []
        while True:
            t = self.peek()
            if t is None:
                self.take()  # raises the truncation error
            if t.value == close:
                self.i += 1
                return out
            if t.value in (",", "=>"):
                self.i += 1
                continue
            out.append(self.value(depth + 1))

    def statements(self) -> Iterator[tuple[str, Any, int]]:
        """Yield (target, value, line): ('@x', [...]), ('$old_group', 'abc'), ('[record]', None)."""
        while self.peek() is not None:
            t = self.take()
            if t.value == ";":
                continue
            if t.kind == "var":
                self.expect("=")
                val = self.value()
                yield t.value, val, t.line
                nxt = self.peek()
                if nxt is not None and nxt.value == ";":
                    self.i += 1
            elif t.value == "[":
                w = self.take()
                self.expect("]")
                yield f"[{w.value}]", None, t.line
            elif t.kind in ("num", "word", "str"):
                continue  # the trailing "1;" of a Perl file
            else:
                raise CorruptFile(f"{self.name}: line {t.line}: unexpected {t.value!r} at "
                                  "statement start")


def parse_statements(src: str, name: str) -> list[tuple[str, Any, int]]:
    return list(_Parser(src, name).statements())
