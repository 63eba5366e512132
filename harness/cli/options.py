"""Argument types shared by the sub-commands: ``--cfg-options KEY=VALUE ...`` and counts >= 1."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from mmengine.config import DictAction


class CfgOptionsAction(DictAction):
    """mmengine's ``KEY=VALUE`` parser (``2`` -> int, ``[1,2]`` -> list, ...), with a usage error
    instead of a traceback for an item without ``=`` or with an empty key."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Sequence[str] | str | None,
        option_string: str | None = None,
    ) -> Any:
        for item in [values] if isinstance(values, str) else values or ():
            key, eq, _ = item.partition('=')
            if not eq or not key.strip():
                raise argparse.ArgumentError(
                    self,
                    f'{item!r} is not KEY=VALUE; write e.g. train_cfg.max_epochs=2 '
                    '(several items separated by spaces)',
                )
        return super().__call__(parser, namespace, values, option_string)


def add_cfg_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str) -> None:
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        default={},
        metavar='KEY=VALUE',
        help=help,
    )


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not an integer') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value
