"""What a function's response may do in a browser: its cookies scoped to its environment, its pages sandboxed.

Every gateway answers from one origin (the embedded data plane: ``/<gw>/<env>/…`` on one host and
port, the control plane and its console on another port of the same host) or from sibling hosts of
one domain (APISIX: ``<gw>.<env>.<domain>``). Browsers send a host's cookies to every port and let a
page script its own origin, so ``confine_response`` rewrites the headers of every tenant response:

* each ``Set-Cookie`` loses its ``Domain`` (a host-only cookie: no widening to sibling hosts) and
  gets its ``Path`` under the environment's prefix as the browser sees it — ``/<gw>/<env>`` plus the
  function's own path on the shared origin, the function's path as it is on the environment's own
  host; a cookie named like the platform's (``imprun…``) or with a ``__Host-``/``__Secure-`` prefix is
  dropped;
* ``Content-Security-Policy: sandbox …`` without ``allow-same-origin`` (added to a function's own
  policy, never replacing it): a page runs its scripts in an opaque origin, so it cannot read or
  call the console, another gateway or the host's cookies;
* ``X-Content-Type-Options: nosniff``: a JSON or text answer is never taken for HTML or script.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["SANDBOX_POLICY", "confine_response", "path_prefix", "scoped_cookie"]

SANDBOX_POLICY: Final = "sandbox allow-scripts allow-forms allow-popups allow-downloads"
_RESERVED_COOKIE_PREFIXES: Final = ("imprun", "__host-", "__secure-")


def path_prefix(gateway_id: str, environment: str, host: str) -> str:
    """The path the browser sees before the function's route: none on ``<gw>.<env>.…`` hosts."""
    if host.lower().startswith(f"{gateway_id}.{environment}.".lower()):
        return ""
    return f"/{gateway_id}/{environment}"


def scoped_cookie(value: str, prefix: str) -> str | None:
    """``value`` with no ``Domain`` and its ``Path`` under ``prefix``; None when the cookie is refused."""
    pair, *attributes = (part.strip() for part in value.split(";"))
    name = pair.partition("=")[0].strip()
    if not name or name.lower().startswith(_RESERVED_COOKIE_PREFIXES):
        return None
    path = "/"
    kept = [pair]
    for attribute in attributes:
        key, _, argument = attribute.partition("=")
        key = key.strip().lower()
        if key == "path":
            argument = argument.strip()
            path = argument if argument.startswith("/") else "/"
        elif key != "domain" and attribute:
            kept.append(attribute)
    return "; ".join([*kept, f"Path={prefix}{path}"])


def confine_response(headers: Mapping[str, str], prefix: str) -> dict[str, str]:
    """A tenant response's headers as they may reach a browser (see the module docstring)."""
    confined: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "set-cookie":
            cookie = scoped_cookie(value, prefix)
            if cookie is not None:
                confined[name] = cookie
        elif lowered not in ("content-security-policy", "x-content-type-options"):
            confined[name] = value
    own_policy = next((v for k, v in headers.items() if k.lower() == "content-security-policy"), "")
    confined["content-security-policy"] = f"{own_policy}, {SANDBOX_POLICY}" if own_policy else SANDBOX_POLICY
    confined["x-content-type-options"] = "nosniff"
    return confined
