"""Shared test set-up: Qt offscreen, and the CamVid data when it is present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
CAMVID = Path(os.environ.get("SEGSTUDIO_CAMVID", REPO.parent / "shared" / "data" / "camvid"))


@pytest.fixture(scope="session")
def camvid() -> Path:
    """The CamVid folder (../shared/data/camvid); the test is skipped when it is absent."""
    if not (CAMVID / "val").is_dir() or not (CAMVID / "valannot").is_dir():
        pytest.skip(f"CamVid data not found at {CAMVID}")
    return CAMVID


@pytest.fixture(autouse=True)
def _leaves_working_directory_alone() -> object:
    """A test writes under tmp_path, never into the folder it was started in."""
    cwd = Path.cwd()
    before = set(os.listdir(cwd))
    yield
    stray = sorted(set(os.listdir(cwd)) - before - {".pytest_cache", ".hypothesis"})
    assert not stray, f"test left files in {cwd}: {stray}"


@pytest.fixture(autouse=True)
def _no_bundled_model_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run without the bundled model; those about it point at a model or
    remove this setting themselves."""
    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(REPO / "no-bundled-model.safetensors"))
