"""`labedge check`: the checks `run` makes, with the same messages, without starting anything."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from core_helpers import instrument, labedge, write_config
from transport_helpers import agent_config

from agent.check import icacls_problem, run_checks


def _without_dac_override() -> None:
    """preexec for a root child: obey file modes like any user (see test_core_badinput)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _as_user() -> dict:
    return {"preexec_fn": _without_dac_override} if os.geteuid() == 0 else {}


def test_check_lists_every_problem_and_run_refuses_with_the_same_message(tmp_path):
    missing = tmp_path / "no-such-folder"
    locked = tmp_path / "locked"
    locked.mkdir()
    cfg = write_config(tmp_path, [instrument(missing, "xrd-1"), instrument(locked, "sem-1")])
    os.chmod(locked, 0)
    try:
        r = labedge("check", "-c", str(cfg), **_as_user())
        run = labedge("run", "-c", str(cfg), timeout=30, **_as_user())
    finally:
        os.chmod(locked, 0o755)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"folder {str(missing)!r} does not exist" in r.stderr, r.stderr
    assert f"folder {str(locked)!r} cannot be read by this user" in r.stderr, r.stderr  # both, not the first only
    first = next(line for line in r.stderr.splitlines() if "does not exist" in line)
    assert run.returncode == 2 and first in run.stderr.splitlines(), (first, run.stderr)
    missing.mkdir()
    r = labedge("check", "-c", str(cfg))
    assert r.returncode == 0 and "is OK" in r.stdout, r.stderr


def test_windows_backslash_path_is_explained(tmp_path):
    cfg = tmp_path / "labedge.toml"
    cfg.write_text('device_id = "pc-01"\n[[instruments]]\nid = "xrd"\nwatch = ["D:\\SmartLab\\Data"]\n')
    r = labedge("check", "-c", str(cfg))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "line 4" in r.stderr and "'D:\\SmartLab\\Data'" in r.stderr and '"D:/SmartLab/Data"' in r.stderr, r.stderr
    assert [p.message for p in run_checks(cfg)] == [r.stderr.strip().split("configuration error: ", 1)[1]]
    # a valid escape that silently means something else: "\t" is a tab
    cfg.write_text('device_id = "pc-01"\n[[instruments]]\nid = "xrd"\nwatch = ["C:\\temp"]\n')
    (msg,) = [p.message for p in run_checks(cfg)]
    assert "contains a tab" in msg and "'D:\\SmartLab\\Data'" in msg, msg


def test_device_id_message_lists_allowed_characters_and_init_writes_nothing_run_refuses(tmp_path):
    cfg = write_config(tmp_path, [instrument(tmp_path)], device_id="lab pc 1")
    (p,) = run_checks(cfg)
    assert "'lab pc 1' is not allowed" in p.message and "A-Z a-z 0-9 . _ -" in p.message, p.message
    out = tmp_path / "new" / "labedge.toml"
    r = labedge("init", "--out", str(out), "--device-id", "lab pc 1", "--watch", str(tmp_path))
    assert r.returncode == 2 and "A-Z a-z 0-9 . _ -" in r.stderr and not out.exists(), r.stderr
    r = labedge("init", "--out", str(out), "--watch", str(tmp_path / "typo"))
    assert r.returncode == 2 and "does not exist" in r.stderr and not out.exists(), r.stderr
    home = tmp_path / "home"
    r = labedge("init", "--out", str(out), env={**os.environ, "HOME": str(home)})
    assert r.returncode == 0, r.stderr
    assert (home / "InstrumentData").is_dir()
    assert labedge("check", "-c", str(out)).returncode == 0


def test_upload_files_and_key_permissions(tmp_path, pki):
    cfg = agent_config(tmp_path, "mqtts://localhost:1", pki)
    key = Path(pki.certs["dev-01"][1])
    own_key = tmp_path / "dev-01.key"
    own_key.write_bytes(key.read_bytes())
    os.chmod(own_key, 0o644)
    cfg.write_text(cfg.read_text().replace(str(key), str(own_key)))
    r = labedge("check", "-c", str(cfg))
    assert r.returncode == 2 and f"key_file {own_key} can be read by other users (mode 0644)" in r.stderr, r.stderr
    assert f"chmod 600 {own_key}" in r.stderr
    os.chmod(own_key, 0o600)
    assert labedge("check", "-c", str(cfg)).returncode == 0
    gone = tmp_path / "gone.pem"
    cfg.write_text(cfg.read_text().replace(str(pki.certs["dev-01"][0]), str(gone)))
    (p,) = run_checks(cfg)
    # exactly what the running uploader reports in `status` (test_auth checks that side)
    assert p.message == f"[upload] cert_file {gone}: file not found" and not p.stops_run, p


def test_icacls_output_with_broad_groups_is_a_problem():
    key = Path(r"C:\ProgramData\labedge\dev-01.key")
    private = f"{key} NT AUTHORITY\\SYSTEM:(F)\n     LAB-PC\\alice:(F)\n\nSuccessfully processed 1 files"
    assert icacls_problem(key, private) is None
    shared = f"{key} BUILTIN\\Users:(I)(RX)\n     LAB-PC\\alice:(F)\n     Everyone:(R)\n"
    why = icacls_problem(key, shared)
    assert why is not None and "BUILTIN\\Users, Everyone" in why and "/inheritance:r" in why, why


def test_online_check_reaches_the_real_broker(tmp_path, broker, pki):
    cfg = agent_config(tmp_path, broker.url, pki)
    r = labedge("check", "--online", "-c", str(cfg))
    assert r.returncode == 0 and "broker accepted" in r.stdout, r.stderr
    broker.stop()
    r = labedge("check", "--online", "-c", str(cfg))
    assert r.returncode == 1 and f"cannot reach localhost:{broker.port} (connection refused" in r.stderr, r.stderr
    assert labedge("check", "-c", str(cfg)).returncode == 0  # offline it does not contact the broker


def test_an_offline_config_is_not_said_to_be_accepted_by_a_broker(tmp_path):
    watch = tmp_path / "watch"
    watch.mkdir()
    cfg = write_config(tmp_path, [instrument(watch)])  # no [upload]: offline
    for extra in ((), ("--online",)):
        r = labedge("check", *extra, "-c", str(cfg))
        assert r.returncode == 0, r.stderr
        assert "offline" in r.stdout and "broker" not in r.stdout, r.stdout
