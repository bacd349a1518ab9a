"""Tenant modules inside the worker: compile, check, execute and keep them by function name.

``FunctionTable.load`` compiles a function's code under the file name ``<function:NAME>`` (its
source goes into ``linecache`` so tracebacks show tenant lines), rejects what ``check_source``
refuses, executes it as module ``functions.NAME`` (registered in the worker's ``sys.modules``, where
dataclasses look a class's module up) with the restricted builtins and ``imp`` injected, and
requires a ``main`` the function contract can call. Any failure — syntax, refused construct,
exception at module level, no usable ``main`` — is a ``LoadError`` with line and column, and the
function's previous version stays loaded. ``compile_transient`` does the same for ``debug`` code
without keeping it.
"""

from __future__ import annotations

import ast
import linecache
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from runtime_actors.shared.frames import FunctionSource, LoadError
from runtime_actors.shared.source_rules import check_source
from runtime_actors.worker import sandbox
from runtime_actors.worker.invocation import TENANT_FILENAME_PREFIX, Contract, ContractError, contract_of

__all__ = ["FunctionTable", "LoadFailed", "LoadedFunction"]


DEBUG_NAME: Final = "(debug)"
"""The name ``debug`` code is compiled under: never a function's name, so it cannot shadow one."""


def _module_name(function: str) -> str:
    return f"functions.{function}"


def _restore(table: dict[str, Any], key: str, previous: Any) -> None:
    if previous is None:
        table.pop(key, None)
    else:
        table[key] = previous


class LoadFailed(Exception):
    def __init__(self, error: LoadError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class LoadedFunction:
    name: str
    version: int
    hash: str
    main: Callable[..., Any]
    contract: Contract


def _module_level_error(exc: BaseException, filename: str) -> LoadError:
    line = None
    with sandbox.trusted():  # reads tb_frame/f_code; no tenant code runs in here
        for frame, lineno in traceback.walk_tb(exc.__traceback__):
            if frame.f_code.co_filename == filename:
                line = lineno
    try:
        detail = str(exc)
    except Exception:
        detail = "<the exception's message could not be read>"
    return LoadError(f"module code raised {type(exc).__name__}: {detail}", line)


class FunctionTable:
    def __init__(self, builtins_namespace: dict[str, Any], imp: types.ModuleType) -> None:
        self._builtins = builtins_namespace
        self._imp = imp
        self._functions: dict[str, LoadedFunction] = {}

    def get(self, name: str) -> LoadedFunction | None:
        return self._functions.get(name)

    def names(self) -> list[str]:
        return sorted(self._functions)

    def unload(self, name: str) -> None:
        self._functions.pop(name, None)
        sys.modules.pop(_module_name(name), None)
        linecache.cache.pop(f"{TENANT_FILENAME_PREFIX}{name}>", None)

    def load(self, source: FunctionSource) -> LoadError | None:
        """Load one function; on error the previous version (if any) stays and the error is returned."""
        current = self._functions.get(source.name)
        if current is not None and current.hash == source.hash and current.version == source.version:
            return None
        try:
            main, contract = self._compile(source.name, source.code)
        except LoadFailed as failed:
            return failed.error
        self._functions[source.name] = LoadedFunction(
            source.name, source.version, source.hash, main, contract
        )
        return None

    def compile_transient(self, code: str) -> tuple[Callable[..., Any], Contract]:
        """``main`` and its contract for code that is run once (``debug``); raises ``LoadFailed``."""
        return self._compile(DEBUG_NAME, code)

    def _compile(self, name: str, code: str) -> tuple[Callable[..., Any], Contract]:
        filename = f"{TENANT_FILENAME_PREFIX}{name}>"
        try:
            tree = ast.parse(code, filename)
        except SyntaxError as exc:
            raise LoadFailed(LoadError(f"SyntaxError: {exc.msg}", exc.lineno, exc.offset)) from exc
        except ValueError as exc:  # e.g. NUL bytes in the source
            raise LoadFailed(LoadError(f"invalid source: {exc}")) from exc
        problems = check_source(tree)
        if problems:
            message, line, column = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise LoadFailed(LoadError(message + more, line, column))
        compiled = compile(tree, filename, "exec", dont_inherit=True)
        module = types.ModuleType(_module_name(name))
        module.__dict__.update(__builtins__=self._builtins, imp=self._imp)
        # dataclasses look a class's module up in sys.modules while the class is built, and
        # tracebacks read the source from linecache: both point at the new code only if it loads
        previous = sys.modules.get(module.__name__), linecache.cache.get(filename)
        sys.modules[module.__name__] = module
        linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
        try:
            return self._execute(module, compiled, filename)
        except BaseException:
            _restore(sys.modules, module.__name__, previous[0])
            _restore(linecache.cache, filename, previous[1])
            raise

    def _execute(
        self, module: types.ModuleType, compiled: types.CodeType, filename: str
    ) -> tuple[Callable[..., Any], Contract]:
        try:
            exec(compiled, module.__dict__)  # noqa: S102 - this is the tenant module, run under the jail
        except BaseException as exc:
            raise LoadFailed(_module_level_error(exc, filename)) from None
        main = module.__dict__.get("main")
        if main is None:
            raise LoadFailed(LoadError("the module defines no 'main' function", 1, 1))
        try:
            contract = contract_of(main)
        except ContractError as exc:
            first_line = getattr(getattr(main, "__code__", None), "co_firstlineno", None)
            raise LoadFailed(LoadError(str(exc), first_line if isinstance(first_line, int) else 1)) from None
        except Exception as exc:
            raise LoadFailed(LoadError(f"'main' has an unusable signature: {exc}", 1)) from None
        return main, contract
