"""IPython magics for prototyping functions in a notebook (``%load_ext imprun``).

``%%imprun_function <gw>/<name> [--data JSON] [--method M] [--no-debug]`` saves the cell as the
function's draft (creating the function when missing) and debug-runs it in the gateway's dev
sandbox, printing the status, duration, the function's log lines and the body; a compile or schema
error is printed with its line and column instead. ``%imprun_call [--api-key KEY] <gw>/<env>/<fn> [JSON]`` calls a
published function over the data plane and returns its body (``x = %imprun_call …`` works).

The magics use one ``imprun.Client`` built from ``IMPRUN_*`` variables or the saved login, or the
``Client`` in the notebook variable ``imprun_client`` when there is one. IPython itself is never
imported here: the shell registers the functions, so this module loads without it.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from typing import Any

from imprun.sdk import Client, ImprunAPIError, ImprunSDKError
from imprun.sdk.models import DebugResult

CLIENT_VARIABLE = "imprun_client"
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class MagicUsageError(ValueError):
    """Bad arguments to a magic; shown as one line."""


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, add_help=False, exit_on_error=False)
    parser.add_argument("target")
    parser.add_argument("--data", "-d", default=None)
    parser.add_argument("--method", "-X", default="POST")
    parser.add_argument("--no-debug", action="store_true")
    return parser


def parse_json(text: str | None) -> Any:
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise MagicUsageError(f"not JSON: {exc}") from None


def split_function_target(target: str) -> tuple[str, str]:
    gateway, _, name = target.partition("/")
    if not gateway or not name:
        raise MagicUsageError(f"expected <gateway>/<function>, got {target!r}")
    return gateway, name


def split_call_target(target: str) -> tuple[str, str, str]:
    parts = target.split("/", 2)
    if len(parts) != 3 or not all(parts):
        raise MagicUsageError(f"expected <gateway>/<environment>/<function>, got {target!r}")
    return parts[0], parts[1], parts[2]


def format_debug(result: DebugResult) -> str:
    lines = [f"debug-run: {result.status} in {result.duration_ms} ms"]
    if result.logs:
        lines.append("logs:")
        lines += [f"  {line.level:7} {line.message}" for line in result.logs]
    body = result.body if isinstance(result.body, str) else json.dumps(result.body, indent=2)
    lines += ["body:", body]
    return "\n".join(lines)


def format_api_error(exc: ImprunAPIError) -> str:
    lines = [f"error: {exc.code} ({exc.status}): {exc.message}"]
    for detail in exc.details if isinstance(exc.details, list) else []:
        if isinstance(detail, dict) and "line" in detail:
            lines.append(
                f"  line {detail.get('line')}, column {detail.get('column')}: {detail.get('message')}"
            )
        elif isinstance(detail, dict) and "loc" in detail:
            lines.append(f"  {'.'.join(str(p) for p in detail['loc'])}: {detail.get('msg')}")
    return "\n".join(lines)


class ImprunMagics:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        chosen = self.shell.user_ns.get(CLIENT_VARIABLE)
        if isinstance(chosen, Client):
            return chosen
        if self._client is None:
            self._client = Client()
        return self._client

    def expand(self, target: str) -> str:
        """``$GATEWAY/hello`` → the notebook variable's value (IPython skips this when the line has JSON)."""
        return _VARIABLE.sub(lambda m: str(self.shell.user_ns.get(m.group(1), m.group(0))), target)

    def imprun_function(self, line: str, cell: str) -> None:
        try:
            args = _parser("%%imprun_function").parse_args(shlex.split(line))
            gateway, name = split_function_target(self.expand(args.target))
            body = parse_json(args.data)
            function = self.client.gateway(gateway).function(name)
            saved = function.save(cell)
            print(f"saved {gateway}/{name} as version {saved.version}")
            if not args.no_debug:
                print(format_debug(function.debug(body, method=args.method)))
        except ImprunAPIError as exc:
            print(format_api_error(exc), file=sys.stderr)
        except (ImprunSDKError, MagicUsageError, argparse.ArgumentError) as exc:
            print(f"error: {exc}", file=sys.stderr)

    def imprun_call(self, line: str) -> Any:
        """``[--api-key KEY] <gw>/<env>/<fn> [JSON body]`` → the response body."""
        text, api_key = line.strip(), None
        if text.startswith("--api-key"):
            _, api_key, text = [*text.split(None, 2), "", ""][:3]
        target, _, body = text.partition(" ")
        try:
            gateway, env, name = split_call_target(self.expand(target))
            result = self.client.call(
                gateway, env, name, parse_json(body), api_key=api_key or None, wait_live=10.0
            )
        except ImprunAPIError as exc:
            print(format_api_error(exc), file=sys.stderr)
            return None
        except (ImprunSDKError, MagicUsageError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return None
        return result.body


def register_magics(shell: Any) -> None:
    magics = ImprunMagics(shell)
    shell.register_magic_function(magics.imprun_function, magic_kind="cell", magic_name="imprun_function")
    shell.register_magic_function(magics.imprun_call, magic_kind="line", magic_name="imprun_call")
