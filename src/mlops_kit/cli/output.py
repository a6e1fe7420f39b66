"""What the commands print, for people at a terminal and for scripts reading a pipe alike.

At a terminal: rich tables and wrapped lines. Piped (a script, `| less`, CI logs): nothing is folded,
cut or wrapped at 80 columns: tables become one tab-separated line per row under a header line, and
long lines (URIs, ARNs) stay whole. `--json` output goes through `emit`, never through rich.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

PIPED_WIDTH = 1_000_000  # "no width": rich wraps nothing narrower


@functools.cache
def _output_class() -> type:
    # rich is imported when a command first prints, not when `mlops --help` loads the commands
    from rich.console import Console, ConsoleDimensions

    class Output(Console):
        """A console that keeps rich's width at a terminal and has none when piped."""

        @property
        def size(self) -> ConsoleDimensions:
            size = super().size
            return size if self.is_terminal else ConsoleDimensions(PIPED_WIDTH, size.height)

        @size.setter
        def size(self, new_size: tuple[int, int]) -> None:
            Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    return Output


class _Lazy:
    """Stands for the console until it is used; then it is one (made once)."""

    def __init__(self, stderr: bool):
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            self._console = _output_class()(stderr=self._stderr)
        return getattr(self._console, name)


def console(stderr: bool = False) -> Console:
    """stdout's (or stderr's) console for a command: rich at a terminal, unwrapped when piped."""
    return _Lazy(stderr)  # type: ignore[return-value]  # it behaves as the Console it makes


def emit(document: Any) -> None:
    """A `--json` answer: one JSON document on stdout (sorted keys, values JSON cannot hold as text)."""
    print(json.dumps(document, indent=2, sort_keys=True, default=str))


def table(
    out: Console,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str = "",
    show_header: bool = True,
    fold: bool = True,
) -> None:
    """Rows under their columns: a rich table at a terminal, tab-separated lines when piped."""
    rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    if not out.is_terminal:  # written as they are: rich would expand the tabs into spaces
        lines = ([title] if title else []) + [
            "\t".join(line) for line in ([list(columns)] if show_header else []) + rows
        ]
        out.file.write("".join(f"{line}\n" for line in lines))
        out.file.flush()
        return
    from rich.table import Table

    shown = Table(title=title or None, title_justify="left", show_header=show_header)
    for column in columns:
        shown.add_column(column, overflow="fold" if fold else "ellipsis")
    for row in rows:
        shown.add_row(*row)
    out.print(shown)
