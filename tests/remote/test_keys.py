"""`labedge fleet keys ...`: owner-only encrypted keys, passphrases never on the command line, and a
key list that devices accept (added, revoked, root rotated)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest

from facility.keys import KeysFolder, PassphraseSource, Signer, load_private
from testpaths import REPO
from wire import signed


def labedge(*args: str, passphrases: list[str], check: bool = True, capsys=None) -> subprocess.CompletedProcess:
    """`labedge ...` in this process (the CLI's own main), passphrases on a pipe as --passphrase-fd."""
    from agent.cli import main
    r, w = os.pipe()
    os.write(w, ("\n".join(passphrases) + "\n").encode())
    os.close(w)
    saved = {k: os.environ.pop(k) for k in list(os.environ) if "PASSPHRASE" in k}
    try:
        rc = main([*args, "--passphrase-fd", str(r)])
    finally:
        os.environ.update(saved)
        try:
            os.close(r)
        except OSError:
            pass  # the CLI closed it after reading
    out = capsys.readouterr() if capsys is not None else None
    p = subprocess.CompletedProcess(args, rc, out.out if out else "", out.err if out else "")
    if check:
        assert rc == 0, p.stderr
    return p


def test_key_ceremony_end_to_end(tmp_path, capsys):
    keys = tmp_path / "keys"
    p = labedge("fleet", "keys", "init", "--out", str(keys), passphrases=["root-secret-1", "admin-secret-1"], capsys=capsys)
    assert "OFFLINE" in p.stdout and "trust_root" in p.stdout
    folder = KeysFolder(keys)
    for f in (folder.root_key, folder.admin_key("admin")):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        assert b"ENCRYPTED" in f.read_bytes()
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    with pytest.raises(Exception, match="wrong passphrase"):
        load_private(folder.admin_key("admin"), b"not-it-at-all")

    # a device pinned to root.pub accepts what the admin signs
    pinned = signed.load_public_pem(folder.root_pub.read_bytes())
    admin = Signer.from_file(folder.admin_key("admin"), _pw("admin-secret-1"))
    trust = signed.TrustStore(pinned)
    v, _ = signed.open_bundle(admin.bundle("config", {"toml": ""}, version=1, targets={"all": True}), trust,
                              time.time())
    assert v.signer == "admin"

    # a second admin, then the first revoked: the device refuses the revoked key with the new list
    labedge("fleet", "keys", "add-admin", "--keys", str(keys), "--name", "bob",
            passphrases=["root-secret-1", "bob-secret-12"], capsys=capsys)
    labedge("fleet", "keys", "revoke-admin", "--keys", str(keys), "--name", "admin", passphrases=["root-secret-1"], capsys=capsys)
    bob = Signer.from_file(folder.admin_key("bob"), _pw("bob-secret-12"))
    v, changed = signed.open_bundle(bob.bundle("config", {}, version=2, targets={"all": True}), trust, time.time())
    assert changed and v.signer == "bob" and trust.admin_version == 3
    with pytest.raises(signed.RevokedKey, match="'admin'"):
        signed.open_bundle(admin.bundle("config", {}, version=3, targets={"all": True}), trust, time.time())

    # root rotation: the device pinned to the OLD root follows the chain
    labedge("fleet", "keys", "rotate-root", "--keys", str(keys), passphrases=["root-secret-1", "root-secret-2"], capsys=capsys)
    bob = Signer.from_file(folder.admin_key("bob"), _pw("bob-secret-12"))
    v, changed = signed.open_bundle(bob.bundle("config", {}, version=4, targets={"all": True}), trust, time.time())
    assert changed and trust.root_version == 2 and trust.root_key_id == signed.key_id(load_public_pub(folder))
    assert signed.key_id(pinned) != trust.root_key_id

    # wrong passphrase: one line, exit 2, no traceback
    p = labedge("fleet", "keys", "add-admin", "--keys", str(keys), "--name", "carol",
                passphrases=["wrong-one-here"], check=False, capsys=capsys)
    assert p.returncode == 2 and "wrong passphrase" in p.stderr and "Traceback" not in p.stderr


def test_passphrase_is_not_a_command_line_option():
    from agent.cli import build_parser
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["fleet", "keys", "init", "--out", "x", "--passphrase", "secret"])


def _pw(secret: str) -> PassphraseSource:
    r, w = os.pipe()
    os.write(w, (secret + "\n").encode())
    os.close(w)
    return PassphraseSource(r)


def load_public_pub(folder: KeysFolder):
    return signed.load_public_pem(folder.root_pub.read_bytes())


def test_the_cli_runs_as_a_process_with_a_passphrase_pipe(tmp_path):
    """Once as a real process: the fd is inherited, nothing secret is on the command line."""
    r, w = os.pipe()
    os.write(w, b"root-secret-1\nadmin-secret-1\n")
    os.close(w)
    try:
        p = subprocess.run([sys.executable, "-m", "agent", "fleet", "keys", "init", "--out", str(tmp_path / "k"),
                            "--passphrase-fd", str(r)], pass_fds=(r,), capture_output=True, text=True, cwd=REPO,
                           timeout=60, env={k: v for k, v in os.environ.items() if "PASSPHRASE" not in k})
    finally:
        os.close(r)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "k" / "root.pub").exists()
