"""Export under kill -9: ``--out`` is always there, old or new and complete, and the
next export leaves nothing behind; names the list files cannot hold are refused."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
from pathlib import Path

import pytest

from segstudio.io.datasets import swap
from segstudio.io.datasets.swap import recover_export
from tests.unit.io.datasets.conftest import make_project, run_export
from tests.unit.io.datasets.kill9 import Killer

fork_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill helper forks")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by relative path, with a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def leftovers(out: Path) -> list[str]:
    return sorted(n for n in os.listdir(out.parent) if n.startswith(f".{out.name}."))


def integrity(project: Path) -> str:
    with sqlite3.connect(project / ".segstudio" / "project.sqlite") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


@pytest.fixture
def exports(tmp_path: Path) -> tuple[Path, dict[int, dict[str, str]]]:
    """A closed six-image project and the snapshots of its exports with seeds 0 and 1."""
    project, _ = make_project(tmp_path / "proj")
    ref: dict[int, dict[str, str]] = {}
    for seed in (0, 1):
        run_export(project, tmp_path / f"ref{seed}", format="index", seed=seed)
        ref[seed] = snapshot(tmp_path / f"ref{seed}")
    project.close()
    assert ref[0] != ref[1]  # the split differs: old and new can be told apart
    return tmp_path / "proj", ref


def test_a_kill_between_the_two_renames_is_put_right(tmp_path: Path, exports) -> None:
    """The fallback (no atomic exchange): out renamed aside, then killed. Before the
    fix --out stayed missing; now the next export (or open) restores it."""
    _, ref = exports
    project, _ = make_project(tmp_path / "p2")
    out = tmp_path / "out"
    run_export(project, out, format="index", seed=0)
    aside = tmp_path / ".out.old-abcd1234"
    os.rename(out, aside)  # exactly what the first rename does
    tmp = tmp_path / ".out.tmp-wxyz_789"
    tmp.mkdir()  # and the complete new folder that was not yet renamed in
    (tmp / "classes.json").write_text("{}")
    assert recover_export(out) and snapshot(out) == ref[0]
    assert leftovers(out) == []
    # the same through the next export: it restores first, then replaces
    os.rename(out, aside)
    report, _ = run_export(project, out, format="index", seed=1, overwrite=True)
    assert snapshot(out) == ref[1] and leftovers(out) == []
    assert any("restored" in w for w in report.warnings)
    project.close()


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_overwrite_fallback_and_exchange_replace_out(
    tmp_path: Path, exports, monkeypatch: pytest.MonkeyPatch, exchange: bool
) -> None:
    _, ref = exports
    monkeypatch.setattr(swap, "EXCHANGE_ENABLED", exchange)
    project, _ = make_project(tmp_path / "p2")
    out = tmp_path / "out"
    run_export(project, out, format="index", seed=0)
    (out / "mine.txt").write_text("kept until replaced")
    run_export(project, out, format="index", seed=1, overwrite=True)
    assert snapshot(out) == ref[1] and leftovers(out) == []
    project.close()


@fork_only
def test_kill9_during_export_overwrite(tmp_path: Path, exports) -> None:
    """kill -9 at random moments of ``export --overwrite`` (and at each rename of the
    two-rename fallback): after every kill --out is the old or the new export,
    complete; the project database is intact; the next export leaves no temporary
    or old folder beside --out."""
    folder, ref = exports
    out = tmp_path / "out"
    rng = random.Random(14)
    with Killer() as killer:
        first = killer.run("export", {"project": str(folder), "out": str(out), "seed": 0})
        assert first.rc == 0 and not first.killed, first.error
        current = 0
        trials = [("time", None)] * 100 + [
            # (each kills just before the call)
            ("call", ("segstudio.io.datasets.swap:_exchange", 1)),  # before the swap
            ("call", ("os:rename", 1)),  # two-rename fallback: before out -> aside
            ("call", ("os:rename", 2)),  # two-rename fallback: between the two renames
            ("call", ("shutil:rmtree", 1)),  # after the swap, before the old one is deleted
        ]
        killed = 0
        for kind, at in trials:
            for exchange in (True, False) if kind == "call" else (rng.random() < 0.5,):
                seed = 1 - current
                args = {"project": str(folder), "out": str(out), "seed": seed}
                args["exchange"] = exchange
                if kind == "time":
                    got = killer.run("export", args, delay=rng.uniform(0, first.seconds * 1.2))
                else:
                    got = killer.run("export", args, kill_at=at)
                assert got.killed or got.rc == 0, got.error
                killed += got.killed
                if exchange or not got.killed:
                    # out is never missing, not even before the next export
                    assert snapshot(out) in (ref[current], ref[seed])
                recover_export(out)  # what the next export does first
                now = snapshot(out)
                assert now in (ref[current], ref[seed])
                assert leftovers(out) == []
                assert integrity(folder) == "ok"
                current = 0 if now == ref[0] else 1
        assert killed >= 25  # most trials were really cut short
