"""A missing ``redis-server`` makes ``imprun up`` fail with one red line and exit code 1.

The real entry point runs in a subprocess whose ``PATH`` holds only the virtualenv's bin dir, so
``redis-server`` really is not found; nothing is mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from imprun.embedded.process import port_open
from tests.fixtures.services import free_port

IMPRUN = Path(sys.executable).parent / "imprun"


def test_up_without_redis_server_says_how_to_install_it(tmp_path: Path) -> None:
    mongo_port = free_port()
    env = {
        "PATH": str(IMPRUN.parent),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "IMPRUN_DATA_DIR": str(tmp_path / "data"),
        "IMPRUN_API_PORT": str(free_port()),
        "IMPRUN_EMBEDDED_MONGO_PORT": str(mongo_port),
        "IMPRUN_EMBEDDED_REDIS_PORT": str(free_port()),
    }
    result = subprocess.run(
        [str(IMPRUN), "up", "--no-ray"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: redis-server was not found on PATH")
    assert "apt-get install -y redis-server" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert not port_open("127.0.0.1", mongo_port)  # it failed before starting anything
    assert list((tmp_path / "data" / "run").glob("*.pid")) == []
