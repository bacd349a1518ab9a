"""Repository-layout guards: the stdlib ``platform`` module is never shadowed, and the layer
contracts are real (import-linter fails when a layer is crossed)."""

from __future__ import annotations

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
        env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": f"{root / 'platform'}:{root}"},
    )


def test_layer_contracts_hold_and_catch_a_crossing(tmp_path: Path) -> None:
    assert _lint_imports(REPO).returncode == 0

    copy = tmp_path / "repo"
    for name in ("platform", "ray_apps", "runtime_actors"):
        shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
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
