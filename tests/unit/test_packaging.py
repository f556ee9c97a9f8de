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
