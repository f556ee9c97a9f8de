"""One writer per project: a second process is refused (naming the first) or reads only."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.errors import ProjectError
from segstudio.io.project import Project, ProjectLockedError
from tests.unit.io.project.conftest import make_folder, random_labels

# Opens the project for writing, says "ready", and holds it until stdin closes
# (or the process is killed).
_HOLDER = textwrap.dedent(
    """
    import sys
    from segstudio.io.project import Project
    try:
        project = Project.open(sys.argv[1])
    except Exception as exc:
        print("refused", exc, flush=True)
        sys.exit(3)
    print("ready", flush=True)
    sys.stdin.read()
    if len(sys.argv) > 2:
        project.save_labels("a.png", __import__("numpy").zeros((12, 16), "uint8"))
    project.close()
    """
)


def _env() -> dict[str, str]:
    repo = str(Path(__file__).resolve().parents[4])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    return env


def _start_holder(folder: Path, *extra: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.startswith("ready"):
        child.kill()
        _, err = child.communicate()
        pytest.fail(f"the holder did not open the project: {line} {err[-2000:]}")
    return child


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = make_folder(tmp_path / "images", ["a.png", "b.png"])
    with Project.open(root) as p:
        p.scan()
        p.save_labels("a.png", random_labels())
    return root


@pytest.fixture
def holder(folder: Path) -> Iterator[subprocess.Popen[str]]:
    child = _start_holder(folder)
    yield child
    if child.poll() is None:
        child.kill()
    child.communicate()


def test_a_second_process_is_refused_with_the_holders_name(
    folder: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(ProjectLockedError, match=rf"open for writing .*pid {holder.pid}\b"):
        Project.open(folder)
    try:
        Project.open(folder)
    except ProjectLockedError as exc:
        assert exc.holder is not None and exc.holder.pid == holder.pid
        assert str(folder) in str(exc) and "\n" not in str(exc)
        assert isinstance(exc, ProjectError)  # the CLI's one line, the window's dialog


def test_a_second_process_may_read_but_not_write(
    folder: Path, holder: subprocess.Popen[str]
) -> None:
    with Project.open(folder, read_only=True) as p:
        assert p.read_only and "read-only" in repr(p)
        assert p.load_labels("a.png") is not None
        assert [r.name for r in p.images()] == ["a.png", "b.png"]
        assert p.get_setting("anything", 5) == 5
        for change in (
            lambda: p.save_labels("b.png", np.zeros((12, 16), np.uint8)),
            lambda: p.set_setting("x", 1),
            lambda: p.set_status("a.png", "reviewed"),
            p.scan,
        ):
            with pytest.raises(ProjectError, match="read-only"):
                change()
    # nothing the reader did reached the disk
    assert holder.poll() is None


def test_the_lock_is_free_once_its_process_is_killed(
    folder: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(ProjectLockedError):
        Project.open(folder)
    holder.kill()  # kill -9: the OS drops the lock, the lock file stays behind
    holder.wait()
    assert (folder / ".segstudio" / "lock").exists()
    with Project.open(folder) as p:
        assert p.load_labels("a.png") is not None


def test_handles_of_one_process_share_the_lock(folder: Path) -> None:
    first = Project.open(folder)
    second = Project.open(folder)  # the window and a worker, say
    first.close()
    child = subprocess.run(
        [sys.executable, "-c", _HOLDER, str(folder)],
        input="",
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert child.returncode == 3 and "refused" in child.stdout, child.stderr
    assert f"pid {os.getpid()}" in child.stdout
    second.close()
    second.close()  # twice does nothing, and gives back nothing twice
    holder = _start_holder(folder)  # free now
    holder.communicate("")
    assert holder.returncode == 0


def test_the_holder_writes_after_a_reader_came_and_went(folder: Path) -> None:
    child = _start_holder(folder, "save")
    with Project.open(folder, read_only=True) as p:
        before = p.load_labels("a.png")
    _, err = child.communicate("")
    assert child.returncode == 0, err
    with Project.open(folder) as p:
        after = p.load_labels("a.png")
        (check,) = p._conn.execute("PRAGMA integrity_check").fetchone()
    assert before is not None and after is not None and not after.any()
    assert check == "ok"


def test_read_only_refuses_a_folder_that_is_no_project(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "plain", ["a.png"])
    with pytest.raises(ProjectError, match="not a SegStudio project"):
        Project.open(root, read_only=True)
    assert not (root / ".segstudio").exists()
