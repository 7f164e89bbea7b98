"""Helpers for the remote-config tests: a real keys folder, signed bundles, agent configs with [remote]."""
from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from facility.keys import KeysFolder, PassphraseSource, Signer, add_admin, init_keys, revoke_admin
from wire import signed

ROOT_PW, ADMIN_PW = "root-passphrase-1", "admin-passphrase-1"


def _env_pw(**env: str) -> PassphraseSource:
    os.environ.update(env)
    return PassphraseSource(None)


class Facility:
    """A keys folder made by the real ceremony code, and an administrator who signs with it."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "keys"
        old = {k: os.environ.get(k) for k in ("LABEDGE_ROOT_PASSPHRASE", "LABEDGE_SIGNING_PASSPHRASE")}
        try:
            init_keys(self.dir, _env_pw(LABEDGE_ROOT_PASSPHRASE=ROOT_PW, LABEDGE_SIGNING_PASSPHRASE=ADMIN_PW))
            self.folder = KeysFolder(self.dir)
            self.admin = Signer.from_file(self.folder.admin_key("admin"), PassphraseSource(None))
            add_admin(self.folder, "bob", PassphraseSource(None))
            self.bob = Signer.from_file(self.folder.admin_key("bob"), PassphraseSource(None))
            self.admin = Signer.from_file(self.folder.admin_key("admin"), PassphraseSource(None))
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    @property
    def root_pub(self) -> Path:
        return self.folder.root_pub

    def revoke_bob(self) -> None:
        os.environ["LABEDGE_ROOT_PASSPHRASE"] = ROOT_PW
        try:
            revoke_admin(self.folder, "bob", PassphraseSource(None))
        finally:
            os.environ.pop("LABEDGE_ROOT_PASSPHRASE", None)
        self.admin.admin_keys = self.folder.admin_list()

    def bundle(self, toml: str, version: int, *, devices: list[str] | None = None, groups: list[str] | None = None,
               signer: Signer | None = None, valid_for: timedelta = timedelta(hours=1),
               not_before: float | None = None) -> bytes:
        s = signer or self.admin
        targets: dict[str, Any] = {}
        if devices:
            targets["devices"] = devices
        if groups:
            targets["groups"] = groups
        env = signed.make_envelope("config", {"toml": toml}, version=version, targets=targets or {"all": True},
                                   valid_for=valid_for, not_before=not_before)
        return signed.bundle(signed.sign(env, s.key), admin_keys=s.admin_keys, roots=s.roots)


def remote_section(root_pub: Path, *, groups: tuple[str, ...] = (), trial_seconds: float = 2) -> str:
    return (f'[remote]\ntrust_root = {json.dumps(str(root_pub))}\ntrial_seconds = {trial_seconds}\n'
            f'groups = {json.dumps(list(groups))}\n')


def local_config(root: Path, root_pub: Path, *, device: str = "pc-1", groups: tuple[str, ...] = ("xrd",),
                 trial_seconds: float = 2, extra: str = "", web: bool = False) -> Path:
    watch = root / "watch"
    watch.mkdir(parents=True, exist_ok=True)
    text = (f'device_id = "{device}"\nspool_dir = "{root / "spool"}"\nstate_dir = "{root / "state"}"\n'
            f'log_dir = "{root / "logs"}"\nrescan_seconds = 60\n{extra}[web]\n'
            + ("enabled = true\nport = 0\n" if web else "enabled = false\n")
            + remote_section(root_pub, groups=groups, trial_seconds=trial_seconds)
            + f'[[instruments]]\nid = "inst"\nwatch = ["{watch}"]\nsettle_seconds = 0.2\npoll_seconds = 0.2\n'
            + 'unpaired_policy = "send"\nhold_seconds = 0\n')
    p = root / "labedge.toml"
    p.write_text(text)
    return p


def wait_for(cond: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
