"""The Python-level half of the jail: defence in depth on top of the kernel's, never instead of it.

CPython cannot confine code in its own process — some route to a function's ``__globals__`` and so
to any loaded module always remains — so everything in this module is best effort, and the
Landlock/seccomp/rlimit jail (``process``) is the boundary. What it adds:

* tenant modules run with ``restricted_builtins``: no ``open``, ``exec``, ``eval``, ``compile``,
  ``input``, ``breakpoint``; ``__import__`` only returns ``ModuleViews`` of ``ALLOWED_MODULES``
  (``__all__`` or public names, sub-modules only when allowed, so ``random._os`` is not there), plus
  the few private helpers C code imports through it (``C_INTERNAL_IMPORTS``); ``getattr``,
  ``setattr``, ``delattr`` and ``hasattr`` refuse the names ``check_source`` refuses;
* ``check_source`` (``runtime_actors.shared.source_rules``) rejects, at load time with line and
  column, imports outside the allow-list, relative imports, ``__builtins__``, frame/generator/traceback
  internals and every dunder attribute but a few harmless ones;
* ``install_audit_hook`` (PEP 578) refuses ``open``, every ``os.*``/``socket.*``/``subprocess.*``/
  ``ctypes.*`` event, code and function construction, tracing, ``gc`` introspection, importing
  dangerous modules, replacing ``__code__``, and — outside ``trusted()`` blocks of worker code —
  frame access (``gi_frame``, ``cr_frame``, ``tb_frame``, ``f_code``, ``sys._getframe``); files may
  only be opened read-only under the time-zone database directories;
* ``forget_dangerous_modules`` drops ``ctypes`` and ``gc`` from ``sys.modules``;
* ``guard_attribute_walkers`` makes the standard library's walkers of attribute names given as
  strings refuse the names ``getattr`` refuses: ``string.Formatter.get_field`` (patched on the real
  class, so a subclass's ``super()`` finds the guarded one too) and, in the ``operator`` view,
  ``attrgetter`` and ``methodcaller``.
"""

from __future__ import annotations

import _string  # type: ignore[import-not-found]  # the parser string.Formatter uses
import builtins
import contextlib
import operator
import os
import string
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from runtime_actors.shared.allowed_modules import ALLOWED_MODULES
from runtime_actors.shared.source_rules import import_refusal, is_blocked_attribute

__all__ = [
    "C_INTERNAL_IMPORTS",
    "ModuleViews",
    "SandboxViolation",
    "forget_dangerous_modules",
    "guard_attribute_walkers",
    "install_audit_hook",
    "restricted_builtins",
    "trusted",
]

C_INTERNAL_IMPORTS: Final = frozenset({"_strptime", "warnings", "copyreg", "encodings"})
"""Modules C code imports lazily through the *calling frame's* ``__import__`` (``datetime.strptime``
imports ``_strptime``). ``PyImport_Import`` discards what ``__import__`` returns and takes the module
from ``sys.modules``, so tenant code calling ``__import__`` itself gets an empty module, not
``warnings`` with its ``sys``."""
_REMOVED_BUILTINS: Final = frozenset(
    {"open", "exec", "eval", "compile", "input", "breakpoint", "help", "exit", "quit", "copyright",
     "credits", "license", "__loader__", "__spec__", "__import__"}
)  # fmt: skip
_DENIED_EVENT_PREFIXES: Final = (
    "os.", "subprocess.", "socket.", "ctypes.", "shutil.", "pty.", "mmap.", "fcntl.", "resource.",
    "signal.", "sqlite3.", "webbrowser.", "glob.", "tempfile.", "syslog.", "gc.", "marshal.",
    "cpython.", "sys.settrace", "sys.setprofile", "sys._current_frames", "sys._current_exceptions",
    "http.client.", "ftplib.", "smtplib.", "urllib.Request", "shelve.", "dbm.", "pickle.find_class",
)  # fmt: skip
_DENIED_EVENTS: Final = frozenset(
    {"code.__new__", "function.__new__", "builtins.input", "builtins.breakpoint", "setopencodehook"}
)  # fmt: skip
_FRAME_ATTRIBUTES: Final = frozenset({"gi_frame", "cr_frame", "ag_frame", "tb_frame", "f_code"})
_GUARDED_SETATTR: Final = frozenset({"__code__", "__class__"})  # e.g. swapping the audit hook's code
_DENIED_IMPORTS: Final = frozenset(
    {"ctypes", "_ctypes", "socket", "_socket", "ssl", "_ssl", "subprocess", "_posixsubprocess",
     "multiprocessing", "_multiprocessing", "concurrent", "threading", "_thread", "pty", "tty", "termios",
     "fcntl", "mmap", "resource", "signal", "gc", "faulthandler", "tracemalloc", "_tracemalloc", "select",
     "selectors", "importlib", "zipimport", "runpy", "code", "codeop", "pdb", "bdb", "shutil", "tempfile",
     "glob", "sqlite3", "dbm", "shelve", "http", "ftplib", "smtplib", "telnetlib", "xmlrpc", "webbrowser",
     "_testcapi", "_testinternalcapi", "_xxsubinterpreters", "_posixshmem", "cProfile", "profile", "trace",
     "pickle", "_pickle", "marshal"}
)  # fmt: skip


class SandboxViolation(PermissionError):
    """Raised by the audit hook and the guarded builtins."""


class _FrameAccessDenied(ValueError):
    """``sys._getframe`` refused: a ValueError, which typing/enum/namedtuple already tolerate."""


class _Trust:
    depth = 0


@contextlib.contextmanager
def trusted() -> Iterator[None]:
    """Worker code that must read frames (formatting a tenant traceback) runs inside this block."""
    _Trust.depth += 1
    try:
        yield
    finally:
        _Trust.depth -= 1


class _Policy:
    readable: tuple[str, ...] = ()
    """Directories tenant code may open files in, read-only (the time-zone database for zoneinfo)."""


def _may_open(args: tuple[Any, ...]) -> bool:
    path, mode, flags = args
    if not isinstance(path, str) or ".." in path or not path.startswith(_Policy.readable):
        return False
    if mode is None:
        return isinstance(flags, int) and flags & os.O_ACCMODE == os.O_RDONLY
    return mode in ("r", "rb")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open":
        if not _may_open(args):
            raise SandboxViolation(f"opening {args[0]!r} is not allowed in functions")
    elif event == "object.__getattr__":
        if args[1] in _FRAME_ATTRIBUTES and not _Trust.depth:
            raise SandboxViolation(f"reading {args[1]} is not allowed in functions")
    elif event == "sys._getframe":
        if not _Trust.depth:
            raise _FrameAccessDenied("call stack introspection is not allowed in functions")
    elif event == "object.__setattr__" or event == "object.__delattr__":
        if args[1] in _GUARDED_SETATTR:
            raise SandboxViolation(f"changing {args[1]} is not allowed in functions")
    elif event == "import":
        if str(args[0]).partition(".")[0] in _DENIED_IMPORTS:
            raise SandboxViolation(f"importing {args[0]} is not allowed in functions")
    elif event in _DENIED_EVENTS or event.startswith(_DENIED_EVENT_PREFIXES):
        raise SandboxViolation(f"{event} is not allowed in functions")


def install_audit_hook(readable_dirs: Sequence[str] = ()) -> None:
    """Once, after the kernel jail: audit hooks cannot be removed from Python."""
    _Policy.readable = tuple(d.rstrip("/") + "/" for d in readable_dirs)
    sys.addaudithook(_audit)


def forget_dangerous_modules() -> None:
    for name in [n for n in sys.modules if n.partition(".")[0] in ("ctypes", "_ctypes", "gc")]:
        del sys.modules[name]


class ModuleViews:
    """What ``import`` returns in tenant code: a public-only copy of each allowed module."""

    def __init__(self, modules: Mapping[str, types.ModuleType]) -> None:
        self._modules = modules
        self._views: dict[str, types.ModuleType] = {}

    def view(self, name: str) -> types.ModuleType:
        cached = self._views.get(name)
        if cached is not None:
            return cached
        view = types.ModuleType(name)
        self._views[name] = view
        module = self._modules.get(name)
        if module is not None and name in ALLOWED_MODULES:
            exported = getattr(module, "__all__", None)
            names = (
                list(exported) if exported is not None else [n for n in vars(module) if not n.startswith("_")]
            )
            replaced = _GUARDED_EXPORTS.get(name, {})
            for attr in names:
                value = replaced.get(attr) or getattr(module, attr, view)
                if value is not view and not isinstance(value, types.ModuleType):
                    setattr(view, attr, value)
            view.__doc__ = module.__doc__
        for child in ALLOWED_MODULES:
            parent, _, leaf = child.rpartition(".")
            if parent == name:
                setattr(view, leaf, self.view(child))
        return view

    def importer(self) -> Callable[..., types.ModuleType]:
        def guarded_import(
            name: str,
            globals: Mapping[str, Any] | None = None,
            locals: Mapping[str, Any] | None = None,
            fromlist: Sequence[str] | None = (),
            level: int = 0,
        ) -> types.ModuleType:
            if name in C_INTERNAL_IMPORTS and not level and name in self._modules:
                return types.ModuleType(name)
            refusal = import_refusal(name, fromlist, level)
            if refusal is not None:
                raise ImportError(refusal, name=name)
            if name not in self._modules and name in ALLOWED_MODULES:
                raise ImportError(f"module '{name}' is not available in this worker", name=name)
            return self.view(name if fromlist else name.partition(".")[0])

        return guarded_import


def _refuse_blocked(names: Iterable[Any]) -> None:
    for name in names:
        if isinstance(name, str) and is_blocked_attribute(name):
            raise SandboxViolation(f"attribute '{name}' is not available in functions")


def _guarded_attrgetter(*paths: str) -> operator.attrgetter[Any]:
    _refuse_blocked(part for path in paths if isinstance(path, str) for part in path.split("."))
    return operator.attrgetter(*paths)


def _guarded_methodcaller(name: str, /, *args: Any, **kwargs: Any) -> operator.methodcaller:
    _refuse_blocked([name])
    return operator.methodcaller(name, *args, **kwargs)


_GUARDED_EXPORTS: Final[dict[str, dict[str, Any]]] = {
    "operator": {"attrgetter": _guarded_attrgetter, "methodcaller": _guarded_methodcaller}
}


def guard_attribute_walkers() -> None:
    """Once, in the worker: ``"{0.__globals__}"``-style field names in ``string.Formatter``."""
    unguarded = string.Formatter.get_field

    def get_field(
        self: string.Formatter, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        _first, rest = _string.formatter_field_name_split(field_name)
        _refuse_blocked(key for is_attribute, key in rest if is_attribute)
        return unguarded(self, field_name, args, kwargs)

    string.Formatter.get_field = get_field  # type: ignore[method-assign]


def _guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    if isinstance(name, str) and is_blocked_attribute(name):
        raise SandboxViolation(f"attribute '{name}' is not available in functions")
    return getattr(obj, name, *default)


def _guarded_hasattr(obj: Any, name: str) -> bool:
    if isinstance(name, str) and is_blocked_attribute(name):
        return False
    return hasattr(obj, name)


def _guarded_setattr(obj: Any, name: str, value: Any) -> None:
    if isinstance(name, str) and is_blocked_attribute(name):
        raise SandboxViolation(f"attribute '{name}' is not available in functions")
    setattr(obj, name, value)


def _guarded_delattr(obj: Any, name: str) -> None:
    if isinstance(name, str) and is_blocked_attribute(name):
        raise SandboxViolation(f"attribute '{name}' is not available in functions")
    delattr(obj, name)


def restricted_builtins(views: ModuleViews) -> dict[str, Any]:
    namespace = {k: v for k, v in vars(builtins).items() if k not in _REMOVED_BUILTINS}
    namespace.update(
        __import__=views.importer(),
        getattr=_guarded_getattr,
        hasattr=_guarded_hasattr,
        setattr=_guarded_setattr,
        delattr=_guarded_delattr,
    )
    return namespace
