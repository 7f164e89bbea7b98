"""Finding 10: a raw file's name never stops its measurement. Names that RFC 8493 percent-encodes,
that Windows refuses, that carry control characters, trailing dots or spaces, that are too long or
not UTF-8 at all are stored under safe names, delivered through the real receiver, verified, and
the original name (bytes escaped) is in provenance."""
from __future__ import annotations

import json
import os

from agent.package.verify import verify_package
from transport_helpers import AgentProc, ReceiverProc, agent_config, stored, wait_for

NAMES = [b"50% Ni.txt", b'a:b?*"<>|.txt', b"bell\x07.txt", b"trailing dot.", b"trailing space ",
         b"caf\xe9.txt", ("\u6e2c" * 80 + ".txt").encode(), b"CON.txt"]


def _escaped(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def test_odd_names_are_stored_safely_and_delivered(tmp_path, broker, pki):
    store = tmp_path / "store"
    rx = ReceiverProc(tmp_path / "rx", broker, pki, store).start_connected()
    cfg = agent_config(tmp_path / "agent", broker.url, pki)
    watch = os.fsencode(tmp_path / "agent" / "watch")
    agent = AgentProc(cfg).start()
    try:
        for i, name in enumerate(NAMES):
            fd = os.open(os.path.join(watch, name), os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, f"2theta intensity\n{i} 1\n".encode())
            os.close(fd)
        wait_for(lambda: len(stored(store)) == len(NAMES) or not agent.alive(), 50, "every measurement stored")
    finally:
        agent.kill()
        rx.kill()
    originals = set()
    for pkg in (p for ps in stored(store).values() for p in ps):
        res = verify_package(pkg)
        assert res.ok, res.problems
        prov = json.loads((pkg / "data/labedge/provenance.json").read_text(encoding="utf-8"))
        (src,) = prov["sources"]
        raw = pkg / "data" / src["raw"]
        assert raw.is_file()
        assert len(raw.name.encode()) <= 255 and not any(c in raw.name for c in '%:?*"<>|\x07')
        assert raw.name == raw.name.rstrip(". ")
        originals.add(src["original_name"])
    assert originals == {_escaped(n) for n in NAMES}
    assert "Traceback" not in agent.text()
