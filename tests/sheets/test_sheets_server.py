"""The local page: loopback only, POST protection, hostile input, escaping; attachments."""
from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import stat
import struct
import zlib
from pathlib import Path

import pytest
from sheets_helpers import FIB_VALUES, AgentEnv, run_rde_validate, wait_for

from agent.package.verify import verify_package
from agent.sheets.attachments import AttachmentRefused, Upload, check_upload, safe_name
from agent.sheets.sheetdb import SheetDB


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"\x00\xff\x00\x00"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def raw_request(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """http.client lets us send the Host/Origin headers a browser (or an attacker) would."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in headers.items():
        c.putheader(k, v)
    c.putheader("Content-Length", str(len(body)))
    c.endheaders(body)
    r = c.getresponse()
    out = r.status, r.read()
    c.close()
    return out


def test_listens_on_loopback_only_and_reports_its_port(agent_env: AgentEnv) -> None:
    env = agent_env
    env.start()
    assert env.agent.web.httpd.server_address[0] == "127.0.0.1"
    assert env.agent.health.get("web_port") == env.port
    addrs = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None) if a[0] == socket.AF_INET}
    for addr in addrs - {"127.0.0.1", "127.0.1.1"}:
        with pytest.raises(OSError):
            socket.create_connection((addr, env.port), timeout=2).close()
    token_file = env.root / "state" / "web-token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert env.token in env.request("GET", "/sheet/fib01")[1]  # embedded in the served page
    assert env.token not in env.request("GET", "/api/status")[1].__repr__()


def test_posts_without_token_or_from_another_origin_are_refused(agent_env: AgentEnv) -> None:
    env = agent_env
    env.start()
    body = json.dumps({"instrument_id": "fib01", "values": FIB_VALUES}).encode()
    host = f"127.0.0.1:{env.port}"
    ok = {"Host": host, "Content-Type": "application/json", "X-Labedge-Token": env.token}
    cases = [
        ({**ok, "X-Labedge-Token": ""}, 403, b"token"),
        ({**ok, "X-Labedge-Token": "x" * 43}, 403, b"token"),
        ({**ok, "Origin": "http://evil.example"}, 403, b"other web pages"),
        ({**ok, "Origin": "null"}, 403, b"other web pages"),
        ({**ok, "Origin": "http://127.0.0.1:1"}, 403, b"other web pages"),
        ({**ok, "Sec-Fetch-Site": "cross-site"}, 403, b"other web pages"),
        ({**ok, "Host": f"evil.example:{env.port}"}, 421, b"127.0.0.1"),   # DNS rebinding
        ({**ok, "Content-Type": "text/plain"}, 415, b"JSON"),
    ]
    for headers, status, msg in cases:
        st, out = raw_request(env.port, "POST", "/api/sheet", headers, body)
        assert st == status and msg in out, (headers, st, out)
    assert SheetDB(env.agent.store).active("fib01") is None
    st, out = raw_request(env.port, "GET", "/", {"Host": f"rebind.example:{env.port}"})
    assert st == 421
    st, out = raw_request(env.port, "POST", "/api/sheet", {**ok, "Origin": f"http://localhost:{env.port}"}, body)
    assert st == 200, out


def test_hostile_bodies_are_bounded_and_answered_in_json(agent_env: AgentEnv) -> None:
    env = agent_env
    env.start()
    st, out = env.post("/api/sheet", None, raw=b"{" * 10)
    assert st == 400 and "not UTF-8 JSON" in out["message"]["en"]
    st, out = env.post("/api/sheet", None, raw=b" " * (300 * 1024))
    assert st == 413
    st, out = env.post("/api/sheet", {"instrument_id": "../../etc", "values": {}})
    assert st == 404 and "no instrument" in out["message"]["en"]
    st, out = env.post("/api/sheet", {"instrument_id": "fib01", "values": {**FIB_VALUES, "custom.beam_current": "x"}})
    assert st == 400 and out["errors"] == {"custom.beam_current": {"ja": "数値を入力してください", "en": "must be a number"}}
    st, out = env.request("GET", "/sheet/nope%3Cscript%3E")
    assert st == 404 and "<script>" not in json.dumps(out)
    st, out = env.request("GET", "/sheet/fib01?hold=../../x")
    assert st == 404


def test_script_values_are_shown_as_text_on_the_queue_page(agent_env: AgentEnv) -> None:
    env = agent_env
    env.start()
    evil = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>"
    st, _ = env.post("/api/sheet", {"instrument_id": "fib01", "values": {**FIB_VALUES, "sample.names": evil}})
    assert st == 200
    env.post("/api/sheet/close", {"instrument_id": "fib01"})
    env.drop("<b onmouseover=alert(3)>x<i>.tif")
    wait_for(lambda: env.holds(), what="the hold")
    st, page = env.request("GET", "/")
    assert st == 200
    assert "<script>window.__pwned" not in page and "<img src=x" not in page and "<b onmouseover" not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page and "&lt;b onmouseover=alert(3)&gt;x&lt;i&gt;.tif" in page
    st, sheet_page = env.request("GET", "/sheet/fib01")
    assert "<script>window" not in sheet_page  # embedded config escapes '<'


def test_attachment_checks_by_name_and_content() -> None:
    assert check_upload(Upload("notes.md", "# 結果\n".encode())) == "notes.md"
    assert check_upload(Upload("fit.csv", "x,y\n1,2\n".encode("cp932"))) == "fit.csv"
    assert check_upload(Upload("photo.PNG", png_bytes())) == "photo.PNG"
    assert safe_name("../../etc/passwd.txt") == "passwd.txt" and safe_name("C:\\x\\..\\a.txt") == "a.txt"
    refused = {
        ("virus.png", b"MZ\x90\x00" + b"\x00" * 200): "content is not a PNG",
        ("virus.jpg", b"MZ\x90\x00"): "not a JPEG",
        ("virus.exe", b"MZ\x90\x00"): "not allowed; allowed: txt, csv",
        ("data.txt", b"\x7fELF\x02\x01"): "not text",
        ("page.html", b"<html>"): "not allowed",
        ("empty.txt", b""): "empty",
    }
    for (name, data), msg in refused.items():
        with pytest.raises(AttachmentRefused) as ei:
            check_upload(Upload(name, data))
        assert msg in str(ei.value) and name in str(ei.value)


def test_attachments_arrive_linked_to_their_parent_and_bad_ones_are_refused(agent_env: AgentEnv) -> None:
    env = agent_env
    env.start()
    env.post("/api/sheet", {"instrument_id": "fib01", "values": FIB_VALUES})
    env.drop("tip.tif")
    parent = env.wait_packages(1)[0]
    files = [{"name": "fit result.csv", "data": base64.b64encode(b"x,y\n1,2\n").decode()},
             {"name": "../tip photo.png", "data": base64.b64encode(png_bytes()).decode()}]
    st, out = env.post("/api/attach", {"parent_id": parent.id, "files": files})
    assert st == 200, out
    child = env.agent.store.package(out["package_id"])
    assert child.kind == "attachment" and child.parent_id == parent.id and child.state == "queued"
    res = verify_package(Path(child.path))
    assert res.ok, res
    raw = sorted(p.name for p in (Path(child.path) / "data/raw/attachments").iterdir())
    assert raw == ["fit result.csv", "tip photo.png"]
    prov = env.provenance(child)
    assert prov["kind"] == "attachment" and prov["parent_id"] == parent.id
    run_rde_validate(Path(child.path))

    exe = base64.b64encode(b"MZ\x90\x00\x03" + b"\x00" * 100).decode()
    st, out = env.post("/api/attach", {"parent_id": parent.id, "files": [{"name": "photo.png", "data": exe}]})
    assert st == 400 and "'photo.png': named .png but its content is not a PNG image" in out["message"]["en"]
    st, out = env.post("/api/attach", {"parent_id": "nope", "files": files})
    assert st == 400 and "not known here" in out["message"]["en"]
    st, out = env.post("/api/attach", {"parent_id": child.id, "files": files})
    assert st == 400 and "itself an attachment" in out["message"]["en"]
    assert len(env.packages()) == 2


def test_a_delivered_package_freed_before_the_page_showed_it_still_shows_its_sheet(agent_env: AgentEnv) -> None:
    """delete_delivered frees the spool copy (and its provenance) as soon as the receiver stored it,
    often before the page's first refresh: the page said "unpaired (no sheet)" for a paired package."""
    env = agent_env
    env.start()
    st, _ = env.post("/api/sheet", {"instrument_id": "fib01", "values": FIB_VALUES})
    assert st == 200
    env.drop("tip-07.tif")
    (pkg,) = env.wait_packages(1)
    env.agent.spool.release(pkg.id)  # what the uploader does on "stored" with delete_delivered
    assert not Path(pkg.path).exists()
    st, data = env.request("GET", "/api/status")
    (row,) = [r for r in data["recent"] if r["id"] == pkg.id]
    assert row["pairing"]["status"] == "paired" and row["pairing"]["source"] == "active-sheet", row
    assert row["sample"] == FIB_VALUES["sample.names"] and row["files"] == ["tip-07.tif"]
    assert row["taken_at"] is not None
    st, page = env.request("GET", "/")
    assert FIB_VALUES["sample.names"] in page.split('id="packages"', 1)[1]
