"""Dataset export and import: layouts, round trips, all-or-nothing behaviour."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from segstudio.core.errors import DatasetError
from segstudio.core.labelset import UNLABELED, LabelClass, LabelSet, preset
from segstudio.io.datasets import (
    CITYSCAPES_LABEL_IDS,
    FORMATS,
    ExportOptions,
    Progress,
    export_dataset,
    import_dataset,
    run_to_end,
)
from segstudio.io.project import ImageStatus, Project

LS = LabelSet(
    "three",
    (LabelClass("Sky", (128, 128, 128)), LabelClass("Road", (128, 64, 128)),
     LabelClass("Car", (64, 0, 128))),
)  # fmt: skip
H, W = 24, 32


def _mask(seed: int, num_classes: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = np.full((H, W), 0, np.uint8)
    m[: H // 2] = 1
    m[H // 2 :, W // 2 :] = 2 % num_classes
    m[3:6, 3:6] = 2 % num_classes  # a second component of class 2
    m[rng.integers(0, H, 20), rng.integers(0, W, 20)] = UNLABELED
    return m


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(100 + seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _make_project(
    folder: Path, n: int = 6, ls: LabelSet = LS
) -> tuple[Project, dict[str, np.ndarray]]:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(_image(i)).save(folder / f"img{i}.png")
    project = Project.open(folder)
    project.scan()
    project.set_labelset(ls)
    masks = {f"img{i}.png": _mask(i, ls.num_classes) for i in range(n)}
    project.import_labels(list(masks.items()), user="test")
    return project, masks


@pytest.fixture
def proj(tmp_path: Path) -> tuple[Project, dict[str, np.ndarray]]:
    project, masks = _make_project(tmp_path / "proj")
    yield project, masks
    project.close()


def _export(project: Project, out: Path, **kw: object):
    gen = export_dataset(project, out, ExportOptions(**kw))
    steps = []
    while True:
        try:
            steps.append(next(gen))
        except StopIteration as stop:
            return stop.value, steps


def _import(folder: Path, source: Path, fmt: str, **kw: object):
    project = Project.open(folder)
    report = run_to_end(import_dataset(project, source, fmt, **kw))
    return project, report


def _masks_by_stem(project: Project) -> dict[str, np.ndarray]:
    return {Path(r.name).stem: project.load_labels(r.name) for r in project.images()}


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_every_format(proj, tmp_path: Path, fmt: str) -> None:
    project, masks = proj
    report, steps = _export(project, tmp_path / "out", format=fmt)
    assert report.images == len(masks) and sum(report.splits.values()) == len(masks)
    assert steps[-1] == Progress(len(masks), len(masks), steps[-1].name)
    assert (tmp_path / "out" / "README.txt").is_file()
    assert (tmp_path / "out" / "classes.json").is_file()
    (tmp_path / "fresh").mkdir()
    fresh, rep = _import(tmp_path / "fresh", tmp_path / "out", fmt)
    assert rep.labels == len(masks)
    assert fresh.labelset.same_classes(LS)
    got = _masks_by_stem(fresh)
    assert set(got) == {Path(n).stem for n in masks}
    for name, m in masks.items():
        np.testing.assert_array_equal(got[Path(name).stem], m)
    assert all(r.status is ImageStatus.REVIEWED for r in fresh.images())
    assert not list(tmp_path.glob(".out.tmp-*"))
    fresh.close()


def test_index_layout_and_split_reproducible(proj, tmp_path: Path) -> None:
    project, masks = proj
    _export(project, tmp_path / "a", format="index", split=(0.5, 0.5, 0.0), seed=3)
    _export(project, tmp_path / "b", format="index", split=(0.5, 0.5, 0.0), seed=3)
    out = tmp_path / "a"
    for split in ("train", "val", "test"):
        assert (out / f"{split}.txt").read_text() == (tmp_path / "b" / f"{split}.txt").read_text()
    train = (out / "train.txt").read_text().split()
    val = (out / "val.txt").read_text().split()
    assert len(train) == 3 and len(val) == 3 and (out / "test.txt").read_text() == ""
    assert (out / "images" / "img0.png").read_bytes() == (project.folder / "img0.png").read_bytes()
    lab = Image.open(out / "labels" / "img0.png")
    assert lab.mode == "L"
    np.testing.assert_array_equal(np.asarray(lab), masks["img0.png"])
    assert LabelSet.load(out / "classes.json").same_classes(LS)
    report, _ = _export(project, tmp_path / "c", format="index", split=(0.5, 0.5, 0.0), seed=4)
    assert report.splits == {"train": 3, "val": 3, "test": 0}


def test_split_validation() -> None:
    with pytest.raises(DatasetError, match="sum to 1"):
        ExportOptions(format="index", split=(0.5, 0.2, 0.2))
    with pytest.raises(DatasetError, match="unknown export format"):
        ExportOptions(format="yolo")


def test_only_reviewed_by_default(proj, tmp_path: Path) -> None:
    project, masks = proj
    project.set_status("img1.png", ImageStatus.IN_PROGRESS)
    pred = np.ones((H, W), np.uint8)
    Image.fromarray(_image(9)).save(project.folder / "zpred.png")
    Image.fromarray(_image(8)).save(project.folder / "znone.png")
    project.scan()
    project.save_prediction("zpred.png", pred, np.full((H, W), 0.5, np.float32), model="m")
    report, _ = _export(project, tmp_path / "out", format="index")
    assert report.images == len(masks) - 1
    reasons = dict(s.split(": ", 1) for s in report.skipped)
    assert set(reasons) == {"img1.png", "zpred.png", "znone.png"}
    assert "not reviewed" in reasons["img1.png"]
    report, _ = _export(project, tmp_path / "out2", format="index", include_predicted=True)
    assert report.images == len(masks) + 1
    assert [s.split(":")[0] for s in report.skipped] == ["znone.png"]
    got = np.asarray(Image.open(tmp_path / "out2" / "labels" / "zpred.png"))
    np.testing.assert_array_equal(got, pred)


def test_name_clash_and_missing_image_error_before_writing(proj, tmp_path: Path) -> None:
    project, _ = proj
    Image.fromarray(_image(0)).save(project.folder / "img0.jpg")
    project.scan()
    project.import_labels([("img0.jpg", _mask(0))])
    with pytest.raises(DatasetError, match=r"img0\.jpg and img0\.png -> img0"):
        _export(project, tmp_path / "out", format="voc")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    (project.folder / "img0.jpg").unlink()
    project.scan()
    (project.folder / "img2.png").unlink()  # gone since the last scan
    os.remove(next(project.state_dir.joinpath("labels").glob("img3.*")))
    with pytest.raises(DatasetError, match=r"2 image\(s\) have problems") as err:
        _export(project, tmp_path / "out", format="index")
    assert "img2.png: the image file is missing" in str(err.value)
    assert "img3.png" in str(err.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_existing_out_and_overwrite(proj, tmp_path: Path) -> None:
    project, masks = proj
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(DatasetError, match="not empty"):
        _export(project, out, format="index")
    assert (out / "keep.txt").exists()
    report, _ = _export(project, out, format="index", overwrite=True)
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


def test_coco_decodes_to_class_masks_and_instances(proj, tmp_path: Path) -> None:
    project, masks = proj
    _export(project, tmp_path / "sem", format="coco", split=(1.0, 0.0, 0.0))
    doc = json.loads((tmp_path / "sem" / "annotations" / "instances_train.json").read_text())
    assert not (tmp_path / "sem" / "annotations" / "instances_val.json").exists()
    assert [c["id"] for c in doc["categories"]] == [1, 2, 3]
    img = next(i for i in doc["images"] if i["file_name"] == "img0.png")
    assert (img["width"], img["height"]) == (W, H)
    anns = [a for a in doc["annotations"] if a["image_id"] == img["id"]]
    assert len(anns) == 3
    for a in anns:
        assert isinstance(a["segmentation"]["counts"], str) and a["iscrowd"] == 0
        rle = dict(a["segmentation"], counts=a["segmentation"]["counts"].encode())
        decoded = mask_utils.decode(rle).astype(bool)
        np.testing.assert_array_equal(decoded, masks["img0.png"] == a["category_id"] - 1)
        assert a["area"] == decoded.sum()
    _export(project, tmp_path / "inst", format="coco", split=(1.0, 0.0, 0.0), instances=True)
    doc = json.loads((tmp_path / "inst" / "annotations" / "instances_train.json").read_text())
    img = next(i for i in doc["images"] if i["file_name"] == "img0.png")
    cars = [a for a in doc["annotations"] if a["image_id"] == img["id"] and a["category_id"] == 3]
    assert len(cars) == 2  # the block in the corner and the square at (3, 3)
    assert sorted(a["bbox"][:2] for a in cars)[0] == [3.0, 3.0]


def test_voc_palette_pngs(tmp_path: Path) -> None:
    voc = preset("voc")
    project, masks = _make_project(tmp_path / "p", n=2, ls=voc)
    _export(project, tmp_path / "out", format="voc")
    im = Image.open(tmp_path / "out" / "SegmentationClass" / "img0.png")
    assert im.mode == "P"
    pal = np.array(im.getpalette(), np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(pal[: voc.num_classes], voc.colors)
    assert tuple(pal[255]) == (224, 224, 192)
    np.testing.assert_array_equal(np.asarray(im), masks["img0.png"])
    assert (tmp_path / "out" / "JPEGImages" / "img0.jpg").is_file()
    sets = tmp_path / "out" / "ImageSets" / "Segmentation"
    assert {p.name for p in sets.iterdir()} == {"train.txt", "val.txt", "trainval.txt", "test.txt"}
    project.close()


def test_cityscapes_label_ids(tmp_path: Path) -> None:
    cs = preset("cityscapes")
    project, _ = _make_project(tmp_path / "p", n=1, ls=cs)
    m = np.arange(H * W, dtype=np.int64).reshape(H, W) % 20
    m = np.where(m == 19, UNLABELED, m).astype(np.uint8)
    project.import_labels([("img0.png", m)])
    report, _ = _export(project, tmp_path / "out", format="cityscapes", split=(1.0, 0.0, 0.0))
    gt = tmp_path / "out" / "gtFine" / "train" / "segstudio"
    ids = np.asarray(Image.open(gt / "img0_gtFine_labelIds.png"))
    lut = np.zeros(256, np.uint8)
    lut[:19] = CITYSCAPES_LABEL_IDS
    np.testing.assert_array_equal(ids, lut[m])
    assert ids[0, 0] == 7 and ids[0, 18] == 33 and ids[0, 19] == 0
    np.testing.assert_array_equal(np.asarray(Image.open(gt / "img0_gtFine_labelTrainIds.png")), m)
    assert (
        tmp_path / "out" / "leftImg8bit" / "train" / "segstudio" / "img0_leftImg8bit.png"
    ).is_file()
    assert not report.warnings
    project.close()


def _snapshot(project: Project) -> tuple:
    return (
        sorted(p.name for p in project.folder.iterdir()),
        [(r.name, r.status, r.has_labels) for r in project.images()],
        sorted(p.name for p in (project.state_dir / "labels").iterdir()),
    )


def test_import_unknown_colours_changes_nothing(proj, tmp_path: Path) -> None:
    project, _ = proj
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    for i in range(2):
        Image.fromarray(_image(20 + i)).save(src / "images" / f"new{i}.png")
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[:] = (128, 128, 128)
        rgb[:4, :5] = (1, 2, 3)  # 20 px
        if i:
            rgb[-1, :3] = (9, 9, 9)  # 3 px
        Image.fromarray(rgb).save(src / "labels" / f"new{i}.png")
    pal = tmp_path / "label_colors.txt"
    pal.write_text("128 128 128\tSky\n128 64 128\tRoad\n64 0 128\tCar\n0 0 0\tVoid\n")
    before = _snapshot(project)
    with pytest.raises(DatasetError) as err:
        run_to_end(import_dataset(project, src, "rgb", palette=pal))
    msg = str(err.value)
    assert "(1, 2, 3) x 40" in msg and "(9, 9, 9) x 3" in msg and "2 file(s)" in msg
    assert _snapshot(project) == before


def test_import_clash_with_different_image(proj, tmp_path: Path) -> None:
    project, _ = proj
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    Image.fromarray(_image(50)).save(src / "images" / "img0.png")  # differs from the project's
    Image.fromarray(_mask(0)).save(src / "labels" / "img0.png")
    LS.save(src / "classes.json")
    before = _snapshot(project)
    with pytest.raises(DatasetError, match=r"different content: img0\.png"):
        run_to_end(import_dataset(project, src, "index"))
    assert _snapshot(project) == before


def test_import_classes_mapped_by_name(proj, tmp_path: Path) -> None:
    project, _ = proj
    reordered = LabelSet("other", tuple(reversed(LS.classes)))
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    Image.fromarray(_image(60)).save(src / "images" / "new.png")
    m = np.zeros((H, W), np.uint8)  # "Car" in the dataset's numbering
    Image.fromarray(m).save(src / "labels" / "new.png")
    reordered.save(src / "classes.json")
    rep = run_to_end(import_dataset(project, src, "index"))
    assert rep.images == 1 and rep.labels == 1
    assert (project.load_labels("new.png") == LS.index_of("Car")).all()
    LabelSet("x", (LabelClass("Tree", (1, 1, 1)),)).save(src / "classes.json")
    with pytest.raises(DatasetError, match=r"not in the project.s label set.*Tree"):
        run_to_end(import_dataset(project, src, "index"))


def test_cvat_import(tmp_path: Path) -> None:
    src = tmp_path / "cvat"
    (src / "SegmentationClass").mkdir(parents=True)
    (src / "JPEGImages").mkdir()
    (src / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\ncar:250,50,83::\nroad:0,0,255::\n"
    )
    Image.fromarray(_image(1)).save(src / "JPEGImages" / "f1.png")
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:5] = (250, 50, 83)
    rgb[-5:] = (0, 0, 255)
    Image.fromarray(rgb).save(src / "SegmentationClass" / "f1.png")
    (tmp_path / "p").mkdir()
    project, rep = _import(tmp_path / "p", src, "cvat")
    assert rep.classes.names == ("car", "road") and project.labelset.names == ("car", "road")
    m = project.load_labels("f1.png")
    assert (m[:5] == 0).all() and (m[-5:] == 1).all() and (m[5:-5] == UNLABELED).all()
    project.close()


def test_rgb_import_with_camvid_label_colors(tmp_path: Path) -> None:
    camvid = preset("camvid11")
    src = tmp_path / "src"
    (src / "train").mkdir(parents=True)
    (src / "trainannot").mkdir()
    masks = {}
    for i in range(2):
        m = _mask(i, camvid.num_classes)
        m[0, :11] = np.arange(11)
        masks[f"f{i}.png"] = m
        Image.fromarray(_image(i)).save(src / "train" / f"f{i}.png")
        from segstudio.core.convert import index_to_rgb

        Image.fromarray(index_to_rgb(m, camvid)).save(src / "trainannot" / f"f{i}.png")
    lines = [f"{c.color[0]} {c.color[1]} {c.color[2]}\t{c.name}" for c in camvid.classes]
    (tmp_path / "label_colors.txt").write_text("\n".join([*lines, "0 0 0\tVoid"]) + "\n")
    (tmp_path / "p").mkdir()
    project, rep = _import(tmp_path / "p", src, "rgb", palette=tmp_path / "label_colors.txt")
    assert rep.labels == 2 and project.labelset.same_classes(camvid)
    for name, m in masks.items():
        np.testing.assert_array_equal(project.load_labels(name), m)
    project.close()


def test_camvid_void_and_colour(proj, tmp_path: Path) -> None:
    project, masks = proj
    _export(project, tmp_path / "out", format="camvid", camvid_void=11, camvid_color=True,
            split=(1.0, 0.0, 0.0))  # fmt: skip
    out = tmp_path / "out"
    ann = np.asarray(Image.open(out / "trainannot" / "img0.png"))
    np.testing.assert_array_equal(ann, np.where(masks["img0.png"] == 255, 11, masks["img0.png"]))
    assert (out / "trainannot_L" / "img0_L.png").is_file()
    assert (out / "label_colors.txt").read_text().splitlines()[-1] == "0 0 0\tVoid"
    first = (out / "train.txt").read_text().splitlines()[0]
    assert first == "train/img0.png trainannot/img0.png"
    assert json.loads((out / "classes.json").read_text())["void_index"] == 11
    (tmp_path / "fresh").mkdir()
    fresh, _ = _import(tmp_path / "fresh", out, "camvid")  # void_index from classes.json
    np.testing.assert_array_equal(fresh.load_labels("img0.png"), masks["img0.png"])
    fresh.close()


def test_import_labels_is_atomic(proj) -> None:
    project, masks = proj
    labels_before = sorted(p.name for p in (project.state_dir / "labels").iterdir())
    bad = np.full((H, W), 7, np.uint8)  # no class 7 in a 3-class set
    with pytest.raises(Exception, match="not classes"):
        project.import_labels([("img0.png", np.zeros((H, W), np.uint8)), ("img1.png", bad)])
    assert sorted(p.name for p in (project.state_dir / "labels").iterdir()) == labels_before
    np.testing.assert_array_equal(project.load_labels("img0.png"), masks["img0.png"])


def test_cli_export_import(proj, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from segstudio import cli
    from segstudio.io import datasets

    assert cli.EXPORT_FORMATS == datasets.FORMATS
    assert cli.IMPORT_FORMATS == datasets.IMPORT_FORMATS
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


def test_import_labels_crash_leftovers_are_swept(proj) -> None:
    project, masks = proj
    folder = project.folder
    project.close()
    # What a crash between writing the files and the commit leaves behind.
    leftover = folder / ".segstudio" / "labels" / "img0.png.v0.import-deadbeef.png"
    Image.fromarray(np.zeros((H, W), np.uint8)).save(leftover)
    with Project.open(folder) as again:
        assert not leftover.exists()
        np.testing.assert_array_equal(again.load_labels("img0.png"), masks["img0.png"])


def test_export_never_touches_the_project_folder(proj, tmp_path: Path) -> None:
    project, _ = proj
    for out in (project.folder, project.folder / "inside", project.folder.parent):
        with pytest.raises(DatasetError, match="project"):
            _export(project, out, format="index", overwrite=True)
    assert (project.folder / ".segstudio").is_dir()
    assert len(project.images()) == 6


def test_import_refuses_to_replace_labels_unless_asked(proj, tmp_path: Path) -> None:
    project, masks = proj
    _export(project, tmp_path / "out", format="index")
    # the project already holds labels for every image: a plain import is refused
    before = {n: project.load_labels(n) for n in masks}
    with pytest.raises(DatasetError, match="already hold labels"):
        run_to_end(import_dataset(project, tmp_path / "out", "index"))
    for name, labels in before.items():
        np.testing.assert_array_equal(project.load_labels(name), labels)
    report = run_to_end(import_dataset(project, tmp_path / "out", "index", replace=True))
    assert report.labels == len(masks)
    assert any("replaced" in w for w in report.warnings)


def test_odd_coco_files_give_clear_errors_not_tracebacks(proj, tmp_path: Path) -> None:
    project, masks = proj
    _export(project, tmp_path / "coco", format="coco", split=(1.0, 0.0, 0.0))
    ann_file = tmp_path / "coco" / "annotations" / "instances_train.json"
    doc = json.loads(ann_file.read_text())
    # a box-only annotation (no mask) is skipped, not a crash
    doc["annotations"].append({**doc["annotations"][0], "id": 999, "segmentation": []})
    ann_file.write_text(json.dumps(doc))
    (tmp_path / "a").mkdir()
    _, report = _import(tmp_path / "a", tmp_path / "coco", "coco")
    assert report.labels == len(masks)
    # a polygon of two points cannot be drawn: a DatasetError naming it
    doc["annotations"][-1]["segmentation"] = [[1.0, 1.0, 2.0, 2.0]]
    ann_file.write_text(json.dumps(doc))
    (tmp_path / "b").mkdir()
    with pytest.raises(DatasetError, match="annotation 999"):
        _import(tmp_path / "b", tmp_path / "coco", "coco")
    ann_file.write_text("[]")
    (tmp_path / "c").mkdir()
    with pytest.raises(DatasetError, match="not a COCO JSON"):
        _import(tmp_path / "c", tmp_path / "coco", "coco")


def test_exif_rotated_images_are_exported_upright(tmp_path: Path) -> None:
    folder = tmp_path / "phone"
    folder.mkdir()
    raw = np.zeros((20, 40, 3), np.uint8)  # stored landscape...
    raw[:, :10] = 255
    im = Image.fromarray(raw)
    exif = im.getexif()
    exif[0x0112] = 6  # ...shown rotated: 40 high, 20 wide
    im.save(folder / "p.jpg", exif=exif.tobytes(), quality=95)
    project = Project.open(folder)
    project.scan()
    project.set_labelset(LS)
    project.import_labels([("p.jpg", np.zeros((40, 20), np.uint8))])
    _export(project, tmp_path / "out", format="index")
    out = Image.open(tmp_path / "out" / "images" / "p.jpg")
    assert out.size == (20, 40)  # upright, the mask's shape
    assert int(out.getexif().get(0x0112, 1)) == 1
    project.close()


def test_exported_folder_is_readable_by_others(proj, tmp_path: Path) -> None:
    project, _ = proj
    _export(project, tmp_path / "out", format="index")
    assert (tmp_path / "out").stat().st_mode & 0o055 == 0o055
