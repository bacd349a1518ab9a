"""The function examples of ``README.md`` and ``docs/*.md`` run against the function runtime, the
README's ``imprun`` command lines against the CLI, and every local link of the documentation (Markdown
files and notebooks) must resolve inside the repository: the documentation cannot drift from the code.

**Marked examples.** A fenced ``python`` block right after an HTML comment opening with
``<!-- example`` is a function; the comment holds one ``key: <JSON>`` per line: ``env`` (the
variables the function reads as ``imp.env``), then per call ``request`` (``{method, path?, query?,
headers?, json? | body?}``) followed by its expected ``status`` and, optionally, ``json`` (the body),
``text`` (the body, a JSON string) and ``headers`` (a subset of the answer's headers). Every
``python`` block that defines ``main`` must be marked.

**The tour.** A shell heredoc ``cat > NAME.py <<'PY' … PY`` defines function ``NAME``; each later
``imprun fn call|debug NAME … -d '<JSON>'`` line of that block is a call, which must answer 200 and,
when the comment after it is JSON, answer exactly that body.

Each function passes the contract check the control plane runs at save and publish
(``runtime_actors.shared.contract.analyze``), is loaded into a real ``WorkerPool`` (jailed worker processes,
as in a replica), and every call's result becomes the HTTP answer through the supervisor's
``translate_result``. No Ray, no services.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from imprun.cli.main import app
from runtime_actors.replica.http import HttpResponse, translate_result
from runtime_actors.replica.pool.worker_pool import WorkerPool
from runtime_actors.shared.contract import analyze
from runtime_actors.shared.messages import Invocation
from tests.runtime_actors.pool_harness import source

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_MARKER = re.compile(r"<!--\s*example\b((?:(?!-->).)*)-->\s*\Z", re.DOTALL)
_HEREDOC = re.compile(r"^cat > ([\w.-]+)\.py <<'(\w+)'\n(.*?)^\2$", re.MULTILINE | re.DOTALL)
_DEFINES_MAIN = re.compile(r"^(?:async )?def main\(", re.MULTILINE)
_INLINE_COMMAND = re.compile(r"`(imprun [^`]+)`")


@dataclass
class Call:
    request: dict[str, Any]
    status: int = 200
    expected: dict[str, Any] = field(default_factory=dict)


@dataclass
class Example:
    where: str
    code: str
    calls: list[Call]
    env: dict[str, str] = field(default_factory=dict)


def _blocks(path: Path) -> Iterator[tuple[int, str, str, str]]:
    """``(line, language, body, text before the block)`` of each fenced block."""
    text = path.read_text()
    for match in _FENCE.finditer(text):
        yield text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2), text[: match.start()]


def _marked(path: Path, line: int, code: str, marker: str) -> Example:
    example = Example(f"{path.name}:{line}", code, [])
    for raw in marker.strip().splitlines():
        key, _, value = raw.partition(":")
        parsed = json.loads(value)
        if key == "env":
            example.env = parsed
        elif key == "request":
            example.calls.append(Call(parsed))
        elif key == "status":
            example.calls[-1].status = parsed
        elif key in ("json", "text", "headers"):
            example.calls[-1].expected[key] = parsed
        else:
            raise ValueError(f"{example.where}: unknown example key {key!r}")
    return example


def _tour_calls(name: str, script: str) -> list[Call]:
    calls = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        if words[:2] != ["imprun", "fn"] or words[2:3] not in (["call"], ["debug"]) or words[3:4] != [name]:
            continue
        options = dict(itertools.pairwise(words[4:]))  # each word → the word after it
        request = {"method": options.get("-X", options.get("--method", "POST"))}
        data = options.get("-d", options.get("--data"))
        if data is not None:
            request["json"] = json.loads(data)
        comment = line.partition("#")[2].strip()
        try:
            expected = {"json": json.loads(comment)}
        except ValueError:
            expected = {}
        calls.append(Call(request, 200, expected))
    return calls


def examples() -> list[Example]:
    found = []
    for path in DOCUMENTS:
        for line, language, body, before in _blocks(path):
            marker = _MARKER.search(before)
            if language == "python" and marker is not None:
                found.append(_marked(path, line, body, marker.group(1)))
            for heredoc in _HEREDOC.finditer(body) if language == "bash" else ():
                name, code = heredoc.group(1), heredoc.group(3)
                calls = _tour_calls(name, body[heredoc.end() :])
                found.append(Example(f"{path.name}:{line} ({name}.py)", code, calls))
    return found


EXAMPLES = examples()


def _invocation(request: Mapping[str, Any]) -> Invocation:
    headers = {k.lower(): v for k, v in request.get("headers", {}).items()}
    body = request.get("body", "").encode()
    if "json" in request:
        body = json.dumps(request["json"]).encode()
        headers.setdefault("content-type", "application/json")
    query = {k: v if isinstance(v, list) else [v] for k, v in request.get("query", {}).items()}
    return Invocation(
        request["method"], request.get("path", ""), query, headers, body, "doc-example", "example"
    )


def _answers(example: Example) -> list[HttpResponse]:
    async def scenario() -> list[HttpResponse]:
        pool = WorkerPool(size=1)
        await pool.start()
        try:
            errors = await pool.load([source("example", example.code)], env=example.env)
            assert errors == {}, f"{example.where} does not load: {errors}"
            results = [await pool.invoke("example", _invocation(c.request)) for c in example.calls]
            return [translate_result(result, "doc-example") for result in results]
        finally:
            await pool.close()

    return asyncio.run(scenario())


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.where for e in EXAMPLES])
def test_the_example_answers_what_the_documentation_says(example: Example) -> None:
    analysis = analyze(example.code)
    assert analysis.ok, f"{example.where} is refused at publish: {analysis.details()}"
    assert example.calls, f"{example.where} shows no call"
    for call, answer in zip(example.calls, _answers(example), strict=True):
        what = f"{example.where}: {call.request}"
        assert answer.status == call.status, f"{what} answered {answer.status}: {answer.body!r}"
        if "json" in call.expected:
            assert json.loads(answer.body) == call.expected["json"], what
        if "text" in call.expected:
            assert answer.body.decode() == call.expected["text"], what
        for name, value in call.expected.get("headers", {}).items():
            assert answer.headers.get(name.lower()) == value, f"{what}: header {name}"


def test_every_function_example_is_marked_and_each_document_has_some() -> None:
    unmarked = [
        f"{path.name}:{line}"
        for path in DOCUMENTS
        for line, language, body, before in _blocks(path)
        if language == "python" and _DEFINES_MAIN.search(body) and not _MARKER.search(before)
    ]
    assert unmarked == [], "python blocks defining main without an <!-- example … --> marker"
    counted = {path.name: sum(e.where.startswith(f"{path.name}:") for e in EXAMPLES) for path in DOCUMENTS}
    assert counted["README.md"] >= 2 and counted["api.md"] >= 4, counted


# --- the README's command lines ---------------------------------------------------------------------


def _command_lines() -> Iterator[tuple[str, list[str]]]:
    """``(where, words)`` of every ``imprun …`` command in the README's shell blocks and code spans."""
    readme = REPO / "README.md"
    for line, language, body, _ in _blocks(readme):
        if language != "bash":
            continue
        for offset, text in enumerate(body.splitlines()):
            code = text.partition("#")[0]
            start = code.find("imprun ")
            if start < 0 or code[start - 1 : start] not in ("", " ", "(", "/"):
                continue
            command = re.split(r"[|)&]", code[start:])[0]
            yield f"README.md:{line + 1 + offset}", shlex.split(command)
    for match in _INLINE_COMMAND.finditer(readme.read_text()):
        yield f"README.md `{match.group(1)}`", match.group(1).replace("[", "").replace("]", "").split()


def _resolve(words: list[str]) -> tuple[list[str], Any]:
    command: Any = get_command(app)
    path = []
    for word in words[1:]:
        commands = getattr(command, "commands", None)
        if commands is None or word not in commands:
            break
        command = commands[word]
        path.append(word)
    return path, command


def test_every_imprun_command_of_the_readme_exists_with_its_options() -> None:
    runner = CliRunner()
    checked = 0
    for where, words in _command_lines():
        path, command = _resolve(words)
        assert not hasattr(command, "commands"), f"{where}: `{' '.join(words)}` names no command"
        assert runner.invoke(app, [*path, "--help"]).exit_code == 0, where
        known = {option for param in command.params for option in (*param.opts, *param.secondary_opts)}
        used = {word.partition("=")[0] for word in words if word.startswith("-")}
        assert used <= known, f"{where}: {sorted(used - known)} not options of imprun {' '.join(path)}"
        checked += 1
    assert checked >= 20, checked


# --- links ------------------------------------------------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)


def _documentation() -> Iterator[Path]:
    """Every Markdown file and notebook of the project (hidden folders and node_modules left out)."""
    for folder, subfolders, files in os.walk(REPO):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d != "node_modules")
        yield from (Path(folder, f) for f in sorted(files) if f.endswith((".md", ".ipynb")))


def _markdown_files() -> Iterator[tuple[Path, str]]:
    for path in _documentation():
        if path.suffix == ".md":
            yield path, path.read_text()
        else:
            cells = json.loads(path.read_text())["cells"]
            yield path, "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_of_the_documentation_stays_in_the_repository_and_resolves() -> None:
    broken = []
    for path, text in _markdown_files():
        for target in _LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto: — outside links are fine, only local ones must resolve
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            if not resolved.is_relative_to(REPO) or not resolved.exists():
                broken.append(f"{path.relative_to(REPO)}: {target}")
            elif anchor and resolved.suffix == ".md":
                anchors = {_anchor(h) for h in _HEADING.findall(resolved.read_text())}
                if anchor not in anchors:
                    broken.append(f"{path.relative_to(REPO)}: {target} (no such heading)")
    assert broken == []
