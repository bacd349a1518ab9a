"""Repository-layout guards: the stdlib ``platform`` module is never shadowed, and the layer
contracts are real (import-linter fails when a layer is crossed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_platform_from_repo_root_is_the_standard_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.__file__); print(platform.python_version())"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    location = Path(result.stdout.splitlines()[0]).resolve()
    assert location.parent == Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert not (REPO / "platform" / "__init__.py").exists()
    assert not list((REPO / "platform").glob("*.py")), "loose modules in platform/ become top-level modules"


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        env={
            "PATH": str(Path(sys.executable).parent),
            "PYTHONPATH": f"{root / 'platform'}:{root}",
            "COLUMNS": "400",  # one line per contract name
        },
    )


def _copy_of_the_repo(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    for name in ("platform", "ray_apps", "runtime_actors", "scripts"):
        shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    return copy


def _broken_by(tmp_path: Path, module: str, source: str) -> str:
    """Lint a copy of the repository with ``module`` (a new file) added; the broken contracts' names."""
    copy = _copy_of_the_repo(tmp_path)
    path = copy / Path(*module.split(".")).with_suffix(".py")
    if module.startswith("imprun."):
        path = copy / "platform" / path.relative_to(copy)
    path.write_text(textwrap.dedent(source))
    crossed = _lint_imports(copy)
    assert crossed.returncode != 0
    assert module in crossed.stdout
    lines = (re.sub(r" \(\d+ ignored imports?\)$", "", line) for line in crossed.stdout.splitlines())
    return "\n".join(line for line in lines if line.endswith(" BROKEN"))


def test_layer_contracts_hold_and_catch_a_crossing(tmp_path: Path) -> None:
    assert _lint_imports(REPO).returncode == 0

    copy = _copy_of_the_repo(tmp_path)
    (copy / "platform" / "imprun" / "domain").mkdir(exist_ok=True)
    (copy / "platform" / "imprun" / "domain" / "__init__.py").touch()
    (copy / "platform" / "imprun" / "domain" / "crossing.py").write_text(
        textwrap.dedent(
            """
            from imprun.api import app  # the pure domain reaching up into the API layer
            import pymongo  # and talking to MongoDB directly
            """
        )
    )
    crossed = _lint_imports(copy)
    assert crossed.returncode != 0
    assert "imprun.domain.crossing" in crossed.stdout


def test_the_worker_may_import_only_shared_and_the_standard_library(tmp_path: Path) -> None:
    broken = _broken_by(
        tmp_path,
        "runtime_actors.worker.crossing",
        """
        import json  # the standard library: fine
        from runtime_actors.shared.frames import encode_frame  # shared: fine
        from runtime_actors.shared.sealing import VariableOpener  # shared, but it needs cryptography
        """,
    )
    assert broken == "the jailed worker imports only runtime_actors.shared and the standard library BROKEN"


def test_worker_replica_and_hub_are_independent(tmp_path: Path) -> None:
    broken = _broken_by(
        tmp_path,
        "runtime_actors.hub.crossing",
        """
        from runtime_actors.replica.http import RequestHead
        """,
    )
    assert broken == "the worker, the replica and the hub are independent of each other BROKEN"


def test_imprun_imports_ray_apps_only_on_named_edges(tmp_path: Path) -> None:
    broken = _broken_by(
        tmp_path,
        "imprun.lifecycle.crossing",
        """
        from ray_apps.environment import build_app
        """,
    )
    assert broken == "imprun imports ray_apps only on named edges (the drivers that deploy its apps) BROKEN"


def test_ray_apps_imports_no_control_plane_layer_but_on_named_edges(tmp_path: Path) -> None:
    broken = _broken_by(
        tmp_path,
        "ray_apps.crossing",
        """
        from imprun.lifecycle import reconciler
        """,
    )
    assert broken == "ray_apps imports no control-plane layer except on named edges BROKEN"
