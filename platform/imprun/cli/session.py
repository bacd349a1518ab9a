"""What the API commands share: an SDK client from the saved login, error → exit code, JSON/table output.

Exit codes (documented in ``imprun --help``): 0 success, 2 usage error (Typer's), 3 the API
answered an error (or there is no login), 4 the control plane or data plane could not be reached.
An API error is one red line with its code; a compile error in ``fn push`` also lists each
``line:column: message`` the API sent.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from imprun.cli.output import error_console, print_error
from imprun.sdk import Client, ImprunAPIError, ImprunConnectionError, ImprunSDKError, NotLoggedInError

EXIT_API_ERROR = 3
EXIT_CONNECTION_ERROR = 4

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
GatewayOption = Annotated[
    str, typer.Option("--gateway", "-g", envvar="IMPRUN_GATEWAY", help="Gateway id (or IMPRUN_GATEWAY).")
]


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


@contextlib.contextmanager
def api_client(url: str | None = None) -> Iterator[Client]:
    """A ``Client`` from IMPRUN_* / the saved login; SDK errors become one line and an exit code."""
    errors = error_console()
    try:
        with Client(url) as client:
            yield client
    except NotLoggedInError as exc:
        print_error(errors, f"not logged in to {exc.url}: run `imprun login` first")
        raise typer.Exit(EXIT_API_ERROR) from None
    except ImprunConnectionError as exc:
        print_error(
            errors, f"cannot reach {exc.url} ({exc.reason}); is the control plane running? (`imprun up`)"
        )
        raise typer.Exit(EXIT_CONNECTION_ERROR) from None
    except ImprunAPIError as exc:
        print_api_error(errors, exc)
        raise typer.Exit(EXIT_API_ERROR) from None
    except ImprunSDKError as exc:
        print_error(errors, str(exc))
        raise typer.Exit(EXIT_API_ERROR) from None


def print_api_error(errors: Console, exc: ImprunAPIError) -> None:
    suffix = f" (requestId {exc.request_id})" if exc.request_id else ""
    print_error(errors, f"{exc.code}: {exc.message}{suffix}")
    for detail in exc.details if isinstance(exc.details, list) else []:
        if isinstance(detail, dict) and "line" in detail:
            errors.print(
                f"  line {detail.get('line')}, column {detail.get('column')}: {escape(str(detail.get('message')))}",
                soft_wrap=True,
            )


def print_json(value: Any) -> None:
    """Models print in the API's own shape; lists of models as a JSON array."""
    typer.echo(json.dumps(_jsonable(value), indent=2, default=str))


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    to_json = getattr(value, "to_json", None)
    return to_json() if callable(to_json) else value


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(escape("" if cell is None else str(cell)) for cell in row))
    console().print(table)


def done(message: str) -> None:
    console().print(f"[green]✓[/] {escape(message)}")
