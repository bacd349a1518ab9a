"""Rich rendering of ``EmbeddedStack`` progress: a spinner while a service starts or stops, then one line.

On a terminal the spinner is transient; elsewhere (logs, tests) only the result lines are printed.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.status import Status

from imprun.embedded.stack import StackEvent, StepState

_RESULTS: dict[StepState, str] = {
    StepState.STARTED: "[green]✓[/] {name} started",
    StepState.REUSED: "[green]✓[/] {name} already running, reused",
    StepState.CONFIGURED: "[green]✓[/] {name} configured",
    StepState.DISABLED: "[yellow]-[/] {name} disabled (--no-ray): functions cannot be deployed or called",
    StepState.STOPPED: "[dim]■[/] {name} stopped",
    StepState.KEPT: "[cyan]●[/] {name} kept running (stop it with `imprun down`)",
}


class StackProgress:
    """A ``ProgressCallback`` for ``EmbeddedStack``; use as a context manager so the spinner is cleaned up."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Status | None = None

    def __call__(self, event: StackEvent) -> None:
        if event.state in (StepState.STARTING, StepState.STOPPING):
            self._spin(f"{event.state.value.capitalize()} {event.service}…")
            return
        self._stop_spinner()
        line = _RESULTS[event.state].format(name=escape(event.service))
        if event.url:
            line += f"  [dim]{escape(event.url)}[/]"
        self.console.print(line, soft_wrap=True)

    def __enter__(self) -> StackProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop_spinner()

    def _spin(self, text: str) -> None:
        if self._status is None:
            self._status = self.console.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def _stop_spinner(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
