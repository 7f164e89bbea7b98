"""The remote-configuration commands under `labedge fleet`: `keys ...` and `config ...`.

``add_fleet_parser(fleet_sub)`` is the hook the `labedge fleet` group calls. Until that group
exists on main, ``add_parser`` makes a minimal `fleet` group itself (TEMPORARY, see agent/cli.py).
"""
from __future__ import annotations

from typing import Any

from facility.remote.config_cli import add_config_parser
from facility.remote.keys_cli import add_keys_parser


def add_fleet_parser(fleet_sub: Any) -> None:
    """The hook `labedge fleet` calls (facility/fleet/cli.py FLEET_ACTION_MODULES)."""
    add_keys_parser(fleet_sub)
    add_config_parser(fleet_sub)


def add_parser(sub: Any) -> None:
    if "fleet" in sub.choices:
        return  # the fleet group exists and calls add_fleet_parser itself
    p = sub.add_parser("fleet", help="facility administration of many devices")
    fs = p.add_subparsers(dest="fleet_command", metavar="FLEET_COMMAND")
    fs.required = True
    add_fleet_parser(fs)
