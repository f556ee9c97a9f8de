"""The wheel ships every package: pyproject's explicit list matches the source tree."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_package_is_listed_for_setuptools() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"]) - {"segstudio.resources"}
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "segstudio").rglob("__init__.py")
    }
    assert found == listed, (
        f"missing from pyproject: {sorted(found - listed)}; "
        f"listed but absent: {sorted(listed - found)}"
    )


def test_no_qt_in_the_unit_tests() -> None:
    """tests/unit runs without a display or Qt: the window's tests live in tests/gui."""
    import ast

    offenders = []
    for path in (REPO / "tests" / "unit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            bad = [n for n in names if n.split(".")[0] in {"PySide6", "pytestqt", "superqt"}]
            bad += [n for n in names if n.startswith("segstudio.gui")]
            if bad:
                offenders.append(f"{path.relative_to(REPO)}: {', '.join(bad)}")
    assert not offenders, offenders
