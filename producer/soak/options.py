"""The command-line options of a seeded mix of ledger tasks, shared by the soak and ``producer drill``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

Command = TypeVar("Command", bound=Callable[..., Any])


def mix_options(*, window: int, deadline: float) -> Callable[[Command], Command]:
    """``--seed --slow-seconds --window --deadline --stall``, with this command's defaults for the window (how
    many futures may be outstanding) and the deadline (seconds for the whole run)."""
    options = [
        click.option("--seed", type=int, default=1, show_default=True,
                     help="Seed of the mix: the same seed, the same plan."),
        click.option("--slow-seconds", type=click.FloatRange(min=0.01, max=10), default=0.5, show_default=True,
                     help="How long slow tasks work (progress: half, interrupt targets: ten times)."),
        click.option("--window", type=click.IntRange(min=10), default=window, show_default=True,
                     help="Futures outstanding at most, so submissions go on for the whole run."),
        click.option("--deadline", type=click.FloatRange(min=10), default=deadline, show_default=True,
                     help="Seconds for the whole run; what has not ended by then is reported, never waited for."),
        click.option("--stall", type=click.FloatRange(min=1), default=60, show_default=True,
                     help="Stop waiting once no future has ended for this long while some are outstanding."),
    ]

    def apply(command: Command) -> Command:
        for option in reversed(options):
            command = option(command)
        return command
    return apply
