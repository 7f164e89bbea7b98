"""The device keeps a working certificate whatever happens during a switch: a crash between the two
file swaps is repaired at start, and a refused first connection puts the old pair back."""
from __future__ import annotations

import os
from pathlib import Path

from agent.fleet.renew import CertificateRenewer, _pair_matches, repair_pair
from agent.health import Health
from facility import pki as P
from transport_helpers import agent_config
from agent.config import load_config
from types import SimpleNamespace


def _pairs(tmp: Path) -> tuple[Path, Path, Path, Path]:
    ca = P.init_ca(tmp / "ca")
    cert, key = P.issue(ca, "dev-01", tmp / "cur")
    new_cert, new_key = P.issue(ca, "dev-01", tmp / "new")
    return cert, key, new_cert, new_key


def test_a_crash_after_the_key_swap_is_finished_at_start(tmp_path: Path) -> None:
    cert, key, new_cert, new_key = _pairs(tmp_path)
    os.replace(key, key.with_name(key.name + ".old"))       # what _swap_in did before the crash:
    key.write_bytes(new_key.read_bytes())                    # the old key kept, the new key in place,
    cert.with_name(cert.name + ".new").write_bytes(new_cert.read_bytes())  # the new cert not yet moved
    assert not _pair_matches(cert, key)
    assert "finished" in repair_pair(cert, key)
    assert _pair_matches(cert, key) and cert.read_bytes() == new_cert.read_bytes()


def test_a_crash_without_the_new_certificate_goes_back_to_the_old_pair(tmp_path: Path) -> None:
    cert, key, _new_cert, new_key = _pairs(tmp_path)
    old = key.read_bytes()
    key.with_name(key.name + ".old").write_bytes(old)
    key.write_bytes(new_key.read_bytes())                    # no cert.new: the answer was never written
    assert "undid" in repair_pair(cert, key)
    assert key.read_bytes() == old and _pair_matches(cert, key)
    assert repair_pair(cert, key) is None, "a matching pair is left alone"


def test_a_refused_first_connection_puts_the_old_pair_back(tmp_path: Path) -> None:
    cert, key, new_cert, new_key = _pairs(tmp_path)
    ident = SimpleNamespace(ca=tmp_path / "ca" / "ca.pem", certs={"dev-01": (cert, key)})
    cfg = load_config(agent_config(tmp_path / "agent", "mqtts://localhost:1", ident), check_watch_folders=False)
    r = CertificateRenewer(cfg, Health())
    old_cert, old_key = cert.read_bytes(), key.read_bytes()
    for p, src in ((cert, new_cert), (key, new_key)):       # what a switch leaves on disk
        p.with_name(p.name + ".old").write_bytes(p.read_bytes())
        p.write_bytes(src.read_bytes())
    results: list[tuple[bool, str]] = []
    r.switching = [lambda ok, msg: results.append((ok, msg))]
    assert r.connect_failed() is True
    assert cert.read_bytes() == old_cert and key.read_bytes() == old_key
    assert r.relink and results and results[0][0] is False and "went back" in results[0][1]
    assert r.connect_failed() is False, "only the first connection after a switch decides"
