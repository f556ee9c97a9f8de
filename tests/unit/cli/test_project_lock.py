"""The command line beside a window that has the project open: export reads, import is refused
with one line naming the other process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.io.project import ImageStatus, Project

REPO = Path(__file__).resolve().parents[3]

_HOLDER = textwrap.dedent(
    """
    import sys
    from segstudio.io.project import ImageStatus, Project
    project = Project.open(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.read()
    """
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(folder / name)
    with Project.open(folder) as p:
        p.scan()
        p.save_labels("a.png", np.ones((20, 30), np.uint8))
        p.save_labels("b.png", np.zeros((20, 30), np.uint8))
        for name in ("a.png", "b.png"):
            p.set_status(name, ImageStatus.REVIEWED)
    return folder


@pytest.fixture
def window(project: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the project open for writing, as a window would."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(project)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None and child.stdout.readline().startswith("ready")
    yield child
    child.kill()
    child.communicate()


def test_export_reads_a_project_open_elsewhere(
    project: Path, window: subprocess.Popen[str], tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    assert main(["export", str(project), "--format", "index", "--out", str(out)]) == 0
    assert any(out.rglob("*.png"))


def test_import_into_a_project_open_elsewhere_is_one_line_naming_it(
    project: Path, window: subprocess.Popen[str], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "ds"
    assert main(["export", str(project), "--format", "index", "--out", str(out)]) == 0
    capsys.readouterr()
    code = main(["import", str(project), str(out), "--format", "index", "--replace"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"pid {window.pid}" in err[0] and "open for writing" in err[0]
