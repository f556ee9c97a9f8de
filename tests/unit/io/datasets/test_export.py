"""The export driver: choice of images, checks before writing, atomic replacement,
cancel, and the round trip of every format through the import."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import DatasetError
from segstudio.core.jobs import Progress
from segstudio.io.datasets import FORMATS, ExportOptions, export_dataset
from segstudio.io.datasets.layouts import split_lists
from segstudio.io.project import ImageStatus, Project
from tests.unit.io.datasets.conftest import (
    LS,
    H,
    W,
    make_image,
    make_mask,
    masks_by_stem,
    run_export,
    run_import,
)


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_every_format(proj, tmp_path: Path, fmt: str) -> None:
    project, masks = proj
    report, steps = run_export(project, tmp_path / "out", format=fmt)
    assert report.images == len(masks) and sum(report.splits.values()) == len(masks)
    assert steps[-1] == Progress(len(masks), len(masks), steps[-1].name)
    assert (tmp_path / "out" / "README.txt").is_file()
    assert (tmp_path / "out" / "classes.json").is_file()
    (tmp_path / "fresh").mkdir()
    fresh, rep = run_import(tmp_path / "fresh", tmp_path / "out", fmt)
    assert rep.labels == len(masks)
    assert fresh.labelset.same_classes(LS)
    got = masks_by_stem(fresh)
    assert set(got) == {Path(n).stem for n in masks}
    for name, m in masks.items():
        np.testing.assert_array_equal(got[Path(name).stem], m)
    assert all(r.status is ImageStatus.REVIEWED for r in fresh.images())
    assert not list(tmp_path.glob(".out.tmp-*"))
    fresh.close()


def test_split_validation() -> None:
    with pytest.raises(DatasetError, match="sum to 1"):
        ExportOptions(format="index", split=(0.5, 0.2, 0.2))
    with pytest.raises(DatasetError, match="unknown export format"):
        ExportOptions(format="yolo")


def test_only_reviewed_by_default(proj, tmp_path: Path) -> None:
    project, masks = proj
    project.set_status("img1.png", ImageStatus.IN_PROGRESS)
    pred = np.ones((H, W), np.uint8)
    Image.fromarray(make_image(9)).save(project.folder / "zpred.png")
    Image.fromarray(make_image(8)).save(project.folder / "znone.png")
    project.scan()
    project.save_prediction("zpred.png", pred, np.full((H, W), 0.5, np.float32), model="m")
    report, _ = run_export(project, tmp_path / "out", format="index")
    assert report.images == len(masks) - 1
    reasons = dict(s.split(": ", 1) for s in report.skipped)
    assert set(reasons) == {"img1.png", "zpred.png", "znone.png"}
    assert "not reviewed" in reasons["img1.png"]
    report, _ = run_export(project, tmp_path / "out2", format="index", include_predicted=True)
    assert report.images == len(masks) + 1
    assert [s.split(":")[0] for s in report.skipped] == ["znone.png"]
    got = np.asarray(Image.open(tmp_path / "out2" / "labels" / "zpred.png"))
    np.testing.assert_array_equal(got, pred)


def test_name_clash_and_missing_image_error_before_writing(proj, tmp_path: Path) -> None:
    project, _ = proj
    Image.fromarray(make_image(0)).save(project.folder / "img0.jpg")
    project.scan()
    project.import_labels([("img0.jpg", make_mask(0))])
    with pytest.raises(DatasetError, match=r"img0\.jpg and img0\.png -> img0"):
        run_export(project, tmp_path / "out", format="voc")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    (project.folder / "img0.jpg").unlink()
    project.scan()
    (project.folder / "img2.png").unlink()  # gone since the last scan
    os.remove(next(project.state_dir.joinpath("labels").glob("img3.*")))
    with pytest.raises(DatasetError, match=r"2 image\(s\) have problems") as err:
        run_export(project, tmp_path / "out", format="index")
    assert "img2.png: the image file is missing" in str(err.value)
    assert "img3.png" in str(err.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_existing_out_and_overwrite(proj, tmp_path: Path) -> None:
    project, masks = proj
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(DatasetError, match="not empty"):
        run_export(project, out, format="index")
    assert (out / "keep.txt").exists()
    report, _ = run_export(project, out, format="index", overwrite=True)
    assert not (out / "keep.txt").exists() and report.images == len(masks)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "proj"]


def test_cancel_leaves_nothing(proj, tmp_path: Path) -> None:
    project, _ = proj
    gen = export_dataset(project, tmp_path / "out", ExportOptions(format="camvid"))
    next(gen)
    next(gen)
    assert list(tmp_path.glob(".out.tmp-*"))
    gen.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


def test_export_never_touches_the_project_folder(proj, tmp_path: Path) -> None:
    project, _ = proj
    for out in (project.folder, project.folder / "inside", project.folder.parent):
        with pytest.raises(DatasetError, match="project"):
            run_export(project, out, format="index", overwrite=True)
    assert (project.folder / ".segstudio").is_dir()
    assert len(project.images()) == 6


def test_exported_folder_is_readable_by_others(proj, tmp_path: Path) -> None:
    project, _ = proj
    run_export(project, tmp_path / "out", format="index")
    assert (tmp_path / "out").stat().st_mode & 0o055 == 0o055


def test_cli_export_import(proj, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from segstudio import cli
    from segstudio.cli import parser
    from segstudio.io import datasets

    assert parser.EXPORT_FORMATS == datasets.FORMATS
    assert parser.IMPORT_FORMATS == datasets.IMPORT_FORMATS
    assert {"export", "import"} <= set(cli.COMMANDS)
    project, masks = proj
    project.set_status("img1.png", ImageStatus.IN_PROGRESS)
    folder = str(project.folder)
    project.close()
    out = tmp_path / "out"
    rc = cli.main(
        ["export", folder, "--format", "camvid", "--out", str(out), "--camvid-void", "11"]
    )
    captured = capsys.readouterr()
    assert rc == 0 and "exported 5 image(s) as camvid" in captured.out
    assert "skipped img1.png: status in_progress" in captured.err
    rc = cli.main(["export", folder, "--format", "camvid", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "not empty" in err
    assert cli.main(["export", folder, "--format", "index", "--out", "x", "--split", "1,1"]) == 2
    capsys.readouterr()
    (tmp_path / "fresh").mkdir()
    rc = cli.main(["import", str(tmp_path / "fresh"), str(out), "--format", "camvid"])
    captured = capsys.readouterr()
    assert rc == 0 and "imported 5 label map(s) (5 new image(s)" in captured.out
    with Project.open(tmp_path / "fresh") as fresh:
        np.testing.assert_array_equal(fresh.load_labels("img0.png"), masks["img0.png"])


def _add_reviewed(project: Project, name: str, seed: int) -> None:
    Image.fromarray(make_image(seed)).save(project.folder / name)
    project.scan()
    project.import_labels([(name, make_mask(seed))])


def test_names_the_list_files_cannot_hold_are_refused(proj, tmp_path: Path) -> None:
    """A newline split a name over two lines of train.txt; a space made CamVid's
    'image annotation' lines ambiguous. Each format refuses what its lists cannot
    hold (listing the names), and formats without lists keep every name."""
    project, masks = proj
    _add_reviewed(project, "two\nlines.png", 20)
    with pytest.raises(
        DatasetError, match=r"1 image name\(s\).*'two\\nlines.png' \(a line break\)"
    ):
        run_export(project, tmp_path / "a", format="index")
    with pytest.raises(DatasetError, match="list files of the voc export"):
        run_export(project, tmp_path / "a", format="voc")
    assert not (tmp_path / "a").exists()
    (project.folder / "two\nlines.png").unlink()
    project.scan()
    _add_reviewed(project, "with space.png", 21)
    with pytest.raises(DatasetError, match=r"'with space.png' \(white space\)"):
        run_export(project, tmp_path / "a", format="camvid")
    # one stem per line holds a space: the index export writes it, and reads it back
    report, _ = run_export(project, tmp_path / "idx", format="index", split=(0.5, 0.5, 0.0))
    lists = (tmp_path / "idx" / "train.txt").read_text() + (
        tmp_path / "idx" / "val.txt"
    ).read_text()
    assert "with space\n" in lists
    assert "list files hold one name per line" in (tmp_path / "idx" / "README.txt").read_text()
    listed = split_lists(tmp_path / "idx")
    assert listed is not None and "with space" in listed[0] + listed[1]
    _add_reviewed(project, " lead.png", 22)
    with pytest.raises(DatasetError, match=r"' lead.png' \(white space at the start or end\)"):
        run_export(project, tmp_path / "b", format="index")
    for fmt in ("coco", "cityscapes"):  # no list files: every name goes
        report, _ = run_export(project, tmp_path / fmt, format=fmt)
        assert report.images == len(masks) + 2
        assert "no list files" in (tmp_path / fmt / "README.txt").read_text()
