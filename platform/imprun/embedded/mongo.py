"""The embedded MongoDB: nx-27017 in multi-database mode, data under ``<data_dir>/mongo``.

Each logical database is one SQLite file in that directory, so data survives ``imprun down`` /
``imprun up``. The same pymongo code path talks to it as to a production replica set.
"""

from __future__ import annotations

import sys

from imprun.embedded.process import LOOPBACK, ServiceProcess
from imprun.settings import Settings
from imprun.store.mongo import mongo_reachable


def embedded_mongo_url(settings: Settings) -> str:
    return f"mongodb://{LOOPBACK}:{settings.embedded_mongo_port}/?directConnection=true"


def mongo_service(settings: Settings) -> ServiceProcess:
    run_dir = settings.data_dir / "run"
    data = settings.data_dir / "mongo"
    url = embedded_mongo_url(settings)
    return ServiceProcess(
        name="nx-27017",
        command=[
            sys.executable,
            "-m",
            "imprun.embedded.nx_server",
            "--data-dir",
            str(data),
            "--host",
            LOOPBACK,
            "--port",
            str(settings.embedded_mongo_port),
            "--log-file",
            str(run_dir / "nx-27017.server.log"),
            "--pid-file",
            str(run_dir / "nx-27017.server.pid"),
        ],
        host=LOOPBACK,
        port=settings.embedded_mongo_port,
        run_dir=run_dir,
        ready=lambda: mongo_reachable(url, timeout=0.5),
        make_dirs=(data,),
        install_hint="nx-27017 could not be started; reinstall the package into the venv: pip install -e '.[dev]' (it depends on nx-27017)",
    )
