"""The copy that hashes while it copies: big files use two threads; errors leave nothing behind."""
from __future__ import annotations

import errno
import hashlib
import os
import threading

import pytest

import agent.package.copying as copying
from agent.package.copying import PIPELINE_MIN, SourceChanged, copy_and_hash


def test_big_copy_is_byte_identical_and_hashed_once(tmp_path):
    src = tmp_path / "big.raw"
    data = os.urandom(PIPELINE_MIN + 5 * 1024 * 1024 + 123)  # pipelined path, odd tail
    src.write_bytes(data)
    ticks = []
    c = copy_and_hash(src, tmp_path / "copy", progress=ticks.append)
    assert c.sha256 == hashlib.sha256(data).hexdigest() and c.size == len(data)
    assert (tmp_path / "copy").read_bytes() == data and sum(ticks) == len(data)
    assert not [t for t in threading.enumerate() if t.name == "copy-io"]


def test_write_error_in_the_io_thread_surfaces_and_cleans_up(tmp_path, monkeypatch):
    src = tmp_path / "big.raw"
    src.write_bytes(os.urandom(PIPELINE_MIN + 1))
    calls = []
    real = copying._write_all

    def full_after_two(fout, data):
        calls.append(1)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fout, data)

    monkeypatch.setattr(copying, "_write_all", full_after_two)
    with pytest.raises(OSError) as exc:
        copy_and_hash(src, tmp_path / "copy")
    assert exc.value.errno == errno.ENOSPC and not (tmp_path / "copy").exists()
    assert not [t for t in threading.enumerate() if t.name == "copy-io"]


def test_source_not_as_settled_is_refused(tmp_path):
    src = tmp_path / "a.ras"
    src.write_bytes(b"12345")
    st = src.stat()
    with pytest.raises(SourceChanged, match="changed after it settled"):
        copy_and_hash(src, tmp_path / "copy", expect=(st.st_size - 1, st.st_mtime_ns))
    assert not (tmp_path / "copy").exists()
    link = tmp_path / "link.ras"
    link.symlink_to(src)
    with pytest.raises(SourceChanged, match="symbolic link"):
        copy_and_hash(link, tmp_path / "copy2")
