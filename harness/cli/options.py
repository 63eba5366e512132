"""Argument types shared by the sub-commands: ``--cfg-options KEY=VALUE ...`` and numbers in a
range (every numeric option of ``vireid`` is checked when it is parsed, with a usage error that
names the option and the range)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
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


def _range_text(low: float | None, high: float | None) -> str:
    if high is None:
        return f'must be at least {low}'
    if low is None:
        return f'must be at most {high}'
    return f'must be in {low}..{high}'


def int_range(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """argparse type: an integer in ``low..high`` (either end open when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not an integer') from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f'{_range_text(low, high)}, got {value}')
        return value

    parse.__name__ = 'int'
    return parse


def float_range(
    low: float | None = None, high: float | None = None, *, low_open: bool = False
) -> Callable[[str], float]:
    """argparse type: a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f'must be a finite number, got {text}')
        below = low is not None and (value <= low if low_open else value < low)
        if below or (high is not None and value > high):
            if low_open and high is not None:
                bounds = f'must be in ({low}, {high}]'
            elif low_open:
                bounds = f'must be above {low}'
            elif low is not None and high is not None:
                bounds = f'must be in [{low}, {high}]'
            else:
                bounds = _range_text(low, high)
            raise argparse.ArgumentTypeError(f'{bounds}, got {text}')
        return value

    parse.__name__ = 'float'
    return parse


# The counts most options take.
positive_int = int_range(1)  # batch sizes, workers that must exist, iterations
non_negative_int = int_range(0)  # loader workers (0: in the main process)
seed_int = int_range(0, 2**32 - 1)  # what numpy's and torch's generators all accept
