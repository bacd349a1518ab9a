"""The modules tenant code may import: a fixed allow-list, checked at save/publish and again in the worker.

Everything here is pure computation from the standard library (no files, processes, sockets,
threads or interpreter internals), plus ``imp``, the platform SDK the worker provides.
"""

from __future__ import annotations

ALLOWED_MODULES: frozenset[str] = frozenset(
    {
        "imp",
        "__future__",
        "base64",
        "binascii",
        "bisect",
        "calendar",
        "collections",
        "collections.abc",
        "copy",
        "dataclasses",
        "datetime",
        "decimal",
        "difflib",
        "enum",
        "fractions",
        "functools",
        "hashlib",
        "heapq",
        "hmac",
        "html",
        "itertools",
        "json",
        "math",
        "numbers",
        "operator",
        "random",
        "re",
        "statistics",
        "string",
        "textwrap",
        "time",
        "typing",
        "unicodedata",
        "urllib.parse",
        "uuid",
        "zoneinfo",
    }
)


def is_allowed(module: str) -> bool:
    return module in ALLOWED_MODULES
