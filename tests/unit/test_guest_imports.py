"""The guest's contract with the interpreters it runs under: the zygote, confinement and the
built-in runtime run inside execution environments under the function's own interpreter
(Python 3.10 to 3.13), which has neither strato nor any third-party package installed.

Every guest module must parse as Python 3.10 and import only the standard library (as
Python 3.10 has it) and other guest modules. mypy (``mypy-guest.ini``, Python 3.10) and ruff
(py310 for the guest) check the rest of what 3.10 lacks.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

GUEST = Path(__file__).resolve().parents[2] / "src" / "strato" / "sandbox" / "guest"
SOURCES = sorted(GUEST.rglob("*.py"))
#: What the guest modules import one another as (the guest directory is on ``sys.path``).
GUEST_NAMES = {path.stem for path in GUEST.glob("*.py")} | {
    path.name for path in GUEST.iterdir() if (path / "__init__.py").is_file()}
#: Standard library modules added after Python 3.10, which the guest may not rely on.
NEWER_THAN_310 = {"tomllib", "wsgiref.types", "_tokenize", "_typing"}


def _imported(tree: ast.Module) -> set[str]:
    """The absolute module names a module imports (relative imports stay in its package)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_guest_has_modules_to_check() -> None:
    assert {"zygote", "confine", "seccomp", "landlock", "lambda_runtime"} <= GUEST_NAMES
    assert len(SOURCES) >= 15


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(GUEST)))
def test_guest_module_parses_as_python_310(path: Path) -> None:
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 10))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(GUEST)))
def test_guest_module_imports_only_the_standard_library(path: Path) -> None:
    foreign = []
    for name in sorted(_imported(ast.parse(path.read_text(), filename=str(path)))):
        top = name.split(".")[0]
        if top in GUEST_NAMES:
            continue
        if top not in sys.stdlib_module_names or name in NEWER_THAN_310 or top in NEWER_THAN_310:
            foreign.append(name)
    assert not foreign, f"{path.name} imports {foreign}: the guest may use the stdlib only"
