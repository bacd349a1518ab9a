"""``imprun fn init|push|pull|publish|promote|history|debug|call``: functions from files to environments.

A function's file is ``<name>.py``; a directory pushes every ``*.py`` under it, nested names
keeping their folders (``reports/daily.py`` → ``reports/daily``). ``push`` saves drafts (creating
the function when missing) and shows the API's line/column when the code does not compile.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from imprun.cli.session import GatewayOption, JsonOption, api_client, console, done, print_json, print_table

app = typer.Typer(help="Write, push, publish, promote, debug and call functions.", no_args_is_help=True)

FunctionArg = Annotated[str, typer.Argument(help="Function name (letters, digits, _, -, / for nesting).")]
BodyOption = Annotated[str | None, typer.Option("--data", "-d", help="JSON request body.")]
EnvOption = Annotated[str, typer.Option("--env", "-e", help="Environment.")]
MethodOption = Annotated[str, typer.Option("--method", "-X", help="HTTP method.")]

TEMPLATE = '''"""{name}: an imprun function. `imprun fn push {file}` saves it; `imprun fn debug {name}` runs it."""

import imp


def main(name: str = "world", excited: bool = False) -> dict:
    """Greet someone.

    Args:
        name: who to greet.
        excited: end with an exclamation mark.
    """
    imp.log("greeting", name)
    return {{"message": f"Hello, {{name}}" + ("!" if excited else ".")}}
'''


def _json_body(data: str | None) -> Any:
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise typer.BadParameter(f"--data is not JSON: {exc}") from None


def _print_body(body: Any) -> None:
    typer.echo(body if isinstance(body, str) else json.dumps(body, indent=2))


def _sources(path: Path, name: str | None) -> list[tuple[str, Path]]:
    if path.is_dir():
        if name:
            raise typer.BadParameter("--name only applies to a single file")
        files = sorted(p for p in path.rglob("*.py") if not p.name.startswith("_"))
        return [(p.relative_to(path).with_suffix("").as_posix(), p) for p in files]
    if not path.is_file():
        raise typer.BadParameter(f"{path} is neither a file nor a directory")
    return [(name or path.stem, path)]


@app.command("init")
def init(
    name: FunctionArg,
    directory: Annotated[Path, typer.Option("--dir", help="Where to write <name>.py.")] = Path(),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a template function file to start from."""
    target = directory / f"{name}.py"
    if target.exists() and not force:
        raise typer.BadParameter(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(TEMPLATE.format(name=name, file=target.as_posix()))
    done(f"wrote {target}")


@app.command("push")
def push(
    path: Annotated[Path, typer.Argument(help="A function file, or a directory of them.")],
    gateway: GatewayOption,
    name: Annotated[
        str | None, typer.Option("--name", help="Function name (default: the file name).")
    ] = None,
    changelog: Annotated[str | None, typer.Option("--changelog", "-m", help="What changed.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Save files as function drafts (created when missing); publish them with `fn publish`."""
    saved = []
    with api_client() as client:
        for function_name, source in _sources(path, name):
            if not as_json:
                console().print(f"pushing [bold]{escape(function_name)}[/] from {escape(str(source))}")
            saved.append(
                client.save_function(gateway, function_name, source.read_text(), changelog=changelog)
            )
    if as_json:
        print_json(saved)
        return
    for function in saved:
        done(f"{function.name} saved as version {function.version}")


@app.command("pull")
def pull(
    gateway: GatewayOption,
    name: Annotated[str | None, typer.Argument(help="One function (default: all of them).")] = None,
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the files.")] = Path(),
) -> None:
    """Write functions' draft code as `NAME.py` files under --dir."""
    with api_client() as client:
        names = [name] if name else [f.name for f in client.list_functions(gateway)]
        for function_name in names:
            function = client.get_function(gateway, function_name)
            target = directory / f"{function.name}.py"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(function.code or "")
            done(f"{function.name} (version {function.version}) → {target}")


@app.command("publish")
def publish(
    name: FunctionArg,
    gateway: GatewayOption,
    env: EnvOption = "dev",
    as_json: JsonOption = False,
) -> None:
    """Publish the draft to an environment (live within milliseconds)."""
    with api_client() as client:
        published = client.publish_function(gateway, name, env)
    if as_json:
        print_json(published)
    else:
        done(f"{name} version {published.version} published to {env}")


@app.command("promote")
def promote(
    name: FunctionArg,
    gateway: GatewayOption,
    to: Annotated[str, typer.Option("--to", help="Target stage (staging or prod).")],
    source: Annotated[
        str | None, typer.Option("--from", help="Source stage (default: the one before).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Copy the version published in one stage to the next."""
    with api_client() as client:
        published = client.deploy_to_stage(gateway, name, to, from_=source)
    if as_json:
        print_json(published)
    else:
        done(f"{name} version {published.version} promoted to {to} from {published.promoted_from or source}")


@app.command("history")
def history(name: FunctionArg, gateway: GatewayOption, as_json: JsonOption = False) -> None:
    """The function's versions with changelog, author and time."""
    with api_client() as client:
        versions = client.function_history(gateway, name)
    if as_json:
        print_json(versions)
        return
    print_table(
        None,
        ["version", "at", "author", "changelog"],
        [(v.version, v.at, v.author, v.changelog) for v in versions],
    )


@app.command("debug")
def debug(
    name: FunctionArg,
    gateway: GatewayOption,
    data: BodyOption = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Run this code instead of the draft.")
    ] = None,
    method: MethodOption = "POST",
    as_json: JsonOption = False,
) -> None:
    """Run the draft (or --file) in the dev sandbox without publishing: status, body, logs, duration."""
    with api_client() as client:
        code = file.read_text() if file else None
        result = client.debug_function(gateway, name, code=code, method=method, body=_json_body(data))
    if as_json:
        print_json(result)
        return
    out = console()
    colour = "green" if result.status < 400 else "red"
    out.print(f"[{colour}]{result.status}[/] in {result.duration_ms} ms")
    for line in result.logs:
        out.print(f"  [dim]{escape(line.level)}[/] {escape(line.message)}")
    _print_body(result.body)


@app.command("call")
def call(
    name: FunctionArg,
    gateway: GatewayOption,
    env: EnvOption = "dev",
    data: BodyOption = None,
    method: MethodOption = "POST",
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="IMPRUN_API_KEY", help="The grant's key.")
    ] = None,
    wait: Annotated[
        float,
        typer.Option("--wait", help="Seconds to retry 404/401 after a fresh publish, key or auth change."),
    ] = 0.0,
) -> None:
    """Call a published function over the data plane and print its response body."""
    with api_client() as client:
        result = client.call(
            gateway, env, name, _json_body(data), method=method, api_key=api_key, wait_live=wait
        )
    _print_body(result.body)
