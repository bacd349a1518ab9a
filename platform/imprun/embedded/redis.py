"""The embedded Redis: a ``redis-server`` child process on loopback, data under ``<data_dir>/redis``."""

from __future__ import annotations

import shutil

from imprun.embedded.process import LOOPBACK, ServiceProcess
from imprun.settings import Settings
from imprun.store.redis import redis_reachable

REDIS_INSTALL_HINT = "redis-server was not found on PATH; install it with `sudo apt-get install -y redis-server` (or your OS's redis package)"


def embedded_redis_url(settings: Settings) -> str:
    return f"redis://{LOOPBACK}:{settings.embedded_redis_port}/0"


def redis_service(settings: Settings) -> ServiceProcess:
    binary = shutil.which("redis-server") or "redis-server"  # a missing binary fails in start()
    data = settings.data_dir / "redis"
    url = embedded_redis_url(settings)
    return ServiceProcess(
        name="redis-server",
        command=[
            binary,
            "--bind",
            LOOPBACK,
            "--port",
            str(settings.embedded_redis_port),
            "--dir",
            str(data),
            "--save",
            "60",
            "1",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            # Bounded memory; when full, writes fail rather than sessions or throttles being evicted.
            "--maxmemory",
            f"{settings.embedded_redis_maxmemory_mb}mb",
            "--maxmemory-policy",
            "noeviction",
        ],
        host=LOOPBACK,
        port=settings.embedded_redis_port,
        run_dir=settings.data_dir / "run",
        ready=lambda: redis_reachable(url, timeout=0.5),
        make_dirs=(data,),
        install_hint=REDIS_INSTALL_HINT,
    )
