"""All terminal output goes through here: one Terminal owns the rich Consoles (hatch's idea).

Tables and results go to stdout, status and errors to stderr, and ``--json`` replaces the human output on
stdout with one JSON document. Progress is pip's idea: ``rich`` draws a bar, ``raw`` prints plain lines that
suit logs and tests, ``off`` prints nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ProgressMode = Literal["rich", "raw", "off"]
PROGRESS_MODES: tuple[ProgressMode, ...] = ("rich", "raw", "off")


class Advance(Protocol):
    def __call__(self, steps: int = 1) -> None: ...


class Terminal:
    """The product's only writer to the terminal."""

    def __init__(self, *, json_output: bool = False, progress: ProgressMode = "rich") -> None:
        self.json_output = json_output
        self.progress_mode = progress
        # Piped output (logs, tests, `docker compose run` without a tty) gets room for the wide tables.
        self.out = Console(file=sys.stdout, highlight=False, soft_wrap=False,
                           width=None if sys.stdout.isatty() else 120)
        self.err = Console(file=sys.stderr, highlight=False)
        self.document: dict[str, Any] = {}

    def status(self, message: str) -> None:
        """A line for the human watching (stderr), never part of the results."""
        self.err.print(message, markup=False)

    def error(self, message: str) -> None:
        self.err.print(f"error: {message}", style="bold red", markup=False)

    def explain(self, markdown: str) -> None:
        """A lesson's explanation (stdout, skipped under --json)."""
        if not self.json_output:
            self.out.print(Markdown(markdown))

    def line(self, text: str) -> None:
        if not self.json_output:
            self.out.print(text, markup=False)

    def table(self, key: str, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """A table on stdout, or under ``key`` in the JSON document."""
        if self.json_output:
            self.document[key] = [dict(zip(columns, row, strict=True)) for row in rows]
            return
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(format_cell(cell) for cell in row))
        self.out.print(table)

    def record(self, key: str, value: Any) -> None:
        """A fact for the JSON document (humans see it in tables and lines)."""
        self.document[key] = value

    def flush_json(self) -> None:
        if self.json_output:
            sys.stdout.write(json.dumps(self.document, indent=2, default=str) + "\n")

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Advance]:
        """Yield ``advance(n)``; draws per ``--progress``. Thread-safe: callbacks may advance it."""
        if self.progress_mode == "rich" and not self.json_output:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=self.err, transient=False) as bar:
                task = bar.add_task(description, total=total)
                yield lambda steps=1: bar.advance(task, steps)
            return
        if self.progress_mode == "off":
            yield lambda steps=1: None
            return
        yield RawProgress(self, description, total)


class RawProgress:
    """``--progress raw``: one plain line per step, e.g. ``cpu prefork: 3/10``."""

    def __init__(self, terminal: Terminal, description: str, total: int) -> None:
        self._terminal, self._description, self._total, self._done = terminal, description, total, 0

    def __call__(self, steps: int = 1) -> None:
        self._done += steps
        self._terminal.status(f"{self._description}: {self._done}/{self._total}")


def format_cell(cell: Any) -> str:
    if isinstance(cell, float):
        return f"{cell:.3g}" if abs(cell) < 1000 else f"{cell:,.0f}"
    return str(cell)


def save_bar_chart(path: Path, *, title: str, ylabel: str, groups: Sequence[str],
                   series: dict[str, Sequence[float]], reference: float | None = None) -> Path:
    """A grouped bar chart as PNG (matplotlib, headless); ``reference`` draws a dashed line (the ideal)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(1, len(series))
    for index, (label, values) in enumerate(series.items()):
        positions = [g + index * width for g in range(len(groups))]
        ax.bar(positions, list(values), width, label=label)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], list(groups))
    if reference is not None:
        ax.axhline(reference, linestyle="--", color="grey", label="ideal")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
