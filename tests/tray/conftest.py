"""Fixtures for the tray tests: an offline agent config in a temporary folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config


@pytest.fixture()
def cfg(tmp_path: Path):
    watch = tmp_path / "watch"
    watch.mkdir()
    p = tmp_path / "labedge.toml"
    p.write_text(f'''
device_id = "tray-test"
spool_dir = "{tmp_path / 'spool'}"
state_dir = "{tmp_path / 'state'}"
log_dir = "{tmp_path / 'log'}"
[web]
enabled = false
[[instruments]]
id = "xrd"
watch = ["{watch}"]
settle_seconds = 0.2
hold_seconds = 0
''', encoding="utf-8")
    return load_config(p)
