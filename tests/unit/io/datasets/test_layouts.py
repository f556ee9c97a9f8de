"""Dataset layouts: the folder pairs, what ``eval FOLDER`` reads, split lists, stem matching."""

from __future__ import annotations

from pathlib import Path

from segstudio.io.datasets.layouts import (
    folder_pairs,
    locate_labels,
    match_stems,
    split_lists,
    stem_clash,
)


def _files(folder: Path, *names: str) -> None:
    """Empty files: the layout code lists names, it never reads pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_folder_pairs_flat_first_then_splits(tmp_path: Path) -> None:
    assert folder_pairs(tmp_path) == []
    for sub in ("images", "labels", "train", "trainannot", "valannot", "test"):
        (tmp_path / sub).mkdir()
    found = folder_pairs(tmp_path)
    assert [(p.split, p.images.name, p.labels.name) for p in found] == [
        (None, "images", "labels"),
        ("train", "train", "trainannot"),
    ]
    assert all(p.root == tmp_path and p.complete for p in found)
    # without images, any label folder counts (the import reports its masks as imageless)
    lenient = folder_pairs(tmp_path, need_images=False)
    assert [p.split for p in lenient] == [None, "train", "val"]
    assert not lenient[-1].complete


def test_locate_labels_for_eval(tmp_path: Path) -> None:
    root = tmp_path / "camvid"
    for sub in ("val", "valannot"):
        (root / sub).mkdir(parents=True)
    (root / "classes.json").write_text("{}")
    beside = locate_labels(root / "val")
    assert beside is not None
    assert (beside.images, beside.labels, beside.root) == (root / "val", root / "valannot", root)
    assert beside.classes == root / "classes.json"
    whole = locate_labels(root)
    assert whole is not None and (whole.images, whole.labels) == (root / "val", root / "valannot")
    flat = tmp_path / "flat"
    for sub in ("images", "labels", "val", "valannot"):
        (flat / sub).mkdir(parents=True)
    found = locate_labels(flat)
    assert found is not None and found.images == flat / "images" and found.classes is None
    assert locate_labels(tmp_path / "flat" / "images") is None


def test_split_lists(tmp_path: Path) -> None:
    assert split_lists(tmp_path) is None
    (tmp_path / "train.txt").write_text("train/a.png trainannot/a.png\ntrain/b.png x/b.png\n")
    assert split_lists(tmp_path) == (["a", "a", "b", "b"], [])
    (tmp_path / "train.txt").write_text("a\nb\n")
    (tmp_path / "val.txt").write_text("c\n\n")
    assert split_lists(tmp_path) == (["a", "b"], ["c"])
    # a line is one stem: spaces and dots stay (they split "my photo" in two before)
    (tmp_path / "train.txt").write_text("my photo\nimg.01\nimages/x.png\ny.jpg\n")
    assert split_lists(tmp_path) == (["my photo", "img.01", "x", "y"], ["c"])


def test_match_stems(tmp_path: Path) -> None:
    _files(tmp_path / "images", "a.jpg", "b.png", "c10.png", "c2.png", "notes.txt")
    _files(tmp_path / "labels", "a.png", "c2.png", "c10.png", "z.png")
    m = match_stems(tmp_path / "images", tmp_path / "labels")
    assert [p.name for p in m.images] == ["a.jpg", "b.png", "c2.png", "c10.png"]
    assert [(i.name, lab.name) for i, lab in m.pairs] == [
        ("a.jpg", "a.png"),
        ("c2.png", "c2.png"),
        ("c10.png", "c10.png"),
    ]
    assert [p.name for p in m.unlabeled] == ["b.png"]
    assert [p.name for p in m.orphans] == ["z.png"]
    empty = match_stems(tmp_path / "missing", tmp_path / "labels")
    assert empty.images == () and len(empty.orphans) == 4


def test_stem_clash() -> None:
    files = [Path("a.png"), Path("b.png"), Path("a.jpg"), Path("b.tif")]
    assert stem_clash(files) == (Path("a.png"), Path("a.jpg"))
    assert stem_clash(files[:2]) is None
