"""The remote-configuration commands under `labedge fleet`: `keys ...` and `config ...`.

``add_fleet_parser(fleet_sub)`` is the hook the `labedge fleet` group calls (FLEET_ACTION_MODULES);
``add_parser`` (agent/cli.py) joins that group, or makes a minimal one in a build without it.
"""
from __future__ import annotations

import argparse
from typing import Any

from facility.remote.config_cli import add_config_parser
from facility.remote.keys_cli import add_keys_parser


def add_fleet_parser(fleet_sub: Any) -> None:
    """The hook `labedge fleet` calls (facility/fleet/cli.py FLEET_ACTION_MODULES)."""
    add_keys_parser(fleet_sub)
    add_config_parser(fleet_sub)


def add_parser(sub: Any) -> None:
    """Join the `labedge fleet` group (facility/fleet/cli.py) if it is there, or make a minimal one.

    Registered LAST in agent/cli.py, so the fleet group exists first when it is built in; if that group
    also lists this module in FLEET_ACTION_MODULES, the second registration is skipped.
    """
    fleet = sub.choices.get("fleet")
    if fleet is not None:
        actions = [a for a in fleet._actions if isinstance(a, argparse._SubParsersAction)]
        if actions and "config" not in actions[0].choices:
            add_fleet_parser(actions[0])
        return
    p = sub.add_parser("fleet", help="facility administration of many devices")
    fs = p.add_subparsers(dest="fleet_command", metavar="FLEET_COMMAND")
    fs.required = True
    add_fleet_parser(fs)
