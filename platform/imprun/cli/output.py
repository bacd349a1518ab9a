"""What every command shares: building the settings and turning ``ImprunError`` into one red line.

Rich wraps long lines to the terminal width; error lines are printed with ``soft_wrap`` so a message
stays on one line whatever the width, which is what scripts grepping the output expect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from imprun.errors import ImprunError, Invalid
from imprun.settings import Settings


def load_settings() -> Settings:
    """``Settings()`` from the environment, with a bad variable reported as ``Invalid``."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"IMPRUN_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise Invalid(f"bad configuration: {problems}") from exc


def error_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_error(console: Console, message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


@contextlib.contextmanager
def exit_on_error(console: Console) -> Iterator[None]:
    """Print an ``ImprunError`` raised in the block as one red line and exit with code 1."""
    try:
        yield
    except ImprunError as exc:
        print_error(console, exc.message)
        raise typer.Exit(1) from None
