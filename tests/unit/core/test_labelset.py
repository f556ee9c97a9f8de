"""Tests of segstudio.core.labelset: validation, JSON files, presets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segstudio.core.errors import LabelSetError, SegStudioError
from segstudio.core.labelset import (
    PRESETS,
    UNLABELED,
    LabelClass,
    LabelSet,
    preset,
)

CAMVID32 = {
    "Animal": (64, 128, 64),
    "Archway": (192, 0, 128),
    "Bicyclist": (0, 128, 192),
    "Bridge": (0, 128, 64),
    "Building": (128, 0, 0),
    "Car": (64, 0, 128),
    "CartLuggagePram": (64, 0, 192),
    "Child": (192, 128, 64),
    "Column_Pole": (192, 192, 128),
    "Fence": (64, 64, 128),
    "LaneMkgsDriv": (128, 0, 192),
    "LaneMkgsNonDriv": (192, 0, 64),
    "Misc_Text": (128, 128, 64),
    "MotorcycleScooter": (192, 0, 192),
    "OtherMoving": (128, 64, 64),
    "ParkingBlock": (64, 192, 128),
    "Pedestrian": (64, 64, 0),
    "Road": (128, 64, 128),
    "RoadShoulder": (128, 128, 192),
    "Sidewalk": (0, 0, 192),
    "SignSymbol": (192, 128, 128),
    "Sky": (128, 128, 128),
    "SUVPickupTruck": (64, 128, 192),
    "TrafficCone": (0, 0, 64),
    "TrafficLight": (0, 64, 64),
    "Train": (192, 64, 128),
    "Tree": (128, 128, 0),
    "Truck_Bus": (192, 128, 192),
    "Tunnel": (64, 0, 64),
    "VegetationMisc": (192, 192, 0),
    "Wall": (64, 192, 0),
}

CITYSCAPES = [
    ("road", (128, 64, 128)),
    ("sidewalk", (244, 35, 232)),
    ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)),
    ("fence", (190, 153, 153)),
    ("pole", (153, 153, 153)),
    ("traffic light", (250, 170, 30)),
    ("traffic sign", (220, 220, 0)),
    ("vegetation", (107, 142, 35)),
    ("terrain", (152, 251, 152)),
    ("sky", (70, 130, 180)),
    ("person", (220, 20, 60)),
    ("rider", (255, 0, 0)),
    ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)),
    ("bus", (0, 60, 100)),
    ("train", (0, 80, 100)),
    ("motorcycle", (0, 0, 230)),
    ("bicycle", (119, 11, 32)),
]

VOC_NAMES = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]


def voc_color(i: int) -> tuple[int, int, int]:
    """The Pascal VOC colour map: the bits of the id interleaved into r, g, b."""
    r = g = b = 0
    for j in range(8):
        r |= ((i >> (3 * j)) & 1) << (7 - j)
        g |= ((i >> (3 * j + 1)) & 1) << (7 - j)
        b |= ((i >> (3 * j + 2)) & 1) << (7 - j)
    return (r, g, b)


def make_set(colors: list[tuple[int, int, int]], unlabeled=(0, 0, 0), name="test") -> LabelSet:
    return LabelSet(name, tuple(LabelClass(f"c{i}", c) for i, c in enumerate(colors)), unlabeled)


# ---------------------------------------------------------------- LabelClass


def test_label_class_normalises_name_and_colour() -> None:
    c = LabelClass("  Road ", [128, np.uint8(64), 128])  # type: ignore[arg-type]
    assert c.name == "Road"
    assert c.color == (128, 64, 128)
    assert all(type(v) is int for v in c.color)
    assert hash(c) == hash(LabelClass("Road", (128, 64, 128)))


@pytest.mark.parametrize("name", ["", "   ", "\t\n", None, 3])
def test_label_class_rejects_bad_names(name: object) -> None:
    with pytest.raises(LabelSetError, match="name"):
        LabelClass(name, (1, 2, 3))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "color",
    [(1, 2), (1, 2, 3, 4), (0, 0, 256), (-1, 0, 0), (1.0, 2, 3), (True, 0, 0), "abc", 7, None],
)
def test_label_class_rejects_bad_colours(color: object) -> None:
    with pytest.raises(LabelSetError, match="colour"):
        LabelClass("x", color)  # type: ignore[arg-type]


def test_label_class_is_frozen() -> None:
    c = LabelClass("a", (1, 2, 3))
    with pytest.raises(AttributeError):
        c.name = "b"  # type: ignore[misc]


# ------------------------------------------------------------------ LabelSet


def test_labelset_basics() -> None:
    ls = LabelSet(
        "roads",
        [LabelClass("Road", (128, 64, 128)), LabelClass("Sky", (70, 130, 180))],  # type: ignore[arg-type]
        unlabeled_color=(9, 9, 9),
    )
    assert isinstance(ls.classes, tuple)
    assert ls.num_classes == 2
    assert ls.names == ("Road", "Sky")
    assert ls.colors.dtype == np.uint8
    assert ls.colors.tolist() == [[128, 64, 128], [70, 130, 180]]
    pal = ls.palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    assert pal[0].tolist() == [128, 64, 128]
    assert pal[1].tolist() == [70, 130, 180]
    assert (pal[2:] == 9).all()
    assert pal[UNLABELED].tolist() == [9, 9, 9]
    pal[0] = 0  # a copy: the label set is unchanged
    assert ls.palette()[0].tolist() == [128, 64, 128]
    assert ls.index_of("sky") == 1
    assert ls.index_of(" ROAD ") == 0
    assert hash(ls) == hash(LabelSet("roads", ls.classes, (9, 9, 9)))


def test_index_of_unknown_lists_names() -> None:
    ls = make_set([(1, 1, 1), (2, 2, 2)])
    with pytest.raises(LabelSetError, match=r"no class 'car'.*c0, c1"):
        ls.index_of("car")


def test_labelset_class_count_limits() -> None:
    with pytest.raises(LabelSetError, match="between 1 and 255"):
        LabelSet("empty", ())
    colors = [(i, 1, 1) for i in range(256)]
    with pytest.raises(LabelSetError, match="256 classes"):
        make_set(colors)
    assert make_set(colors[:255]).num_classes == 255


def test_duplicate_names_are_rejected_ignoring_case() -> None:
    with pytest.raises(LabelSetError, match=r"'Road' and 2 'ROAD' have the same name"):
        LabelSet(
            "x",
            (
                LabelClass("Road", (1, 1, 1)),
                LabelClass("Sky", (2, 2, 2)),
                LabelClass("ROAD", (3, 3, 3)),
            ),
        )


def test_duplicate_colours_are_rejected_naming_both_classes() -> None:
    with pytest.raises(LabelSetError, match=r"'a' and 1 'b' have the same colour \(1, 2, 3\)"):
        LabelSet("x", (LabelClass("a", (1, 2, 3)), LabelClass("b", (1, 2, 3))))


def test_class_colour_must_differ_from_unlabeled_colour() -> None:
    with pytest.raises(LabelSetError, match=r"'a' has colour \(0, 0, 0\).*unlabeled"):
        LabelSet("x", (LabelClass("a", (0, 0, 0)),))
    LabelSet("x", (LabelClass("a", (0, 0, 0)),), unlabeled_color=(255, 255, 255))


def test_labelset_rejects_non_classes() -> None:
    with pytest.raises(LabelSetError, match="LabelClass"):
        LabelSet("x", (("a", (1, 2, 3)),))  # type: ignore[arg-type]
    with pytest.raises(LabelSetError, match="name"):
        LabelSet("  ", (LabelClass("a", (1, 2, 3)),))


def test_same_classes_ignores_name_and_unlabeled_colour() -> None:
    a = make_set([(1, 1, 1), (2, 2, 2)], name="one")
    b = make_set([(1, 1, 1), (2, 2, 2)], unlabeled=(5, 5, 5), name="two")
    assert a != b
    assert a.same_classes(b)
    assert not a.same_classes(make_set([(2, 2, 2), (1, 1, 1)]))
    assert not a.same_classes(make_set([(1, 1, 1), (2, 2, 3)]))


def test_same_names_ignores_colours_and_case() -> None:
    camvid = preset("camvid11")
    recoloured = LabelSet("mine", (LabelClass("SKY", (1, 2, 3)), *camvid.classes[1:]))
    assert camvid.same_names(recoloured) and not camvid.same_classes(recoloured)
    assert not camvid.same_names(LabelSet("x", camvid.classes[::-1]))
    assert not camvid.same_names(preset("camvid32"))


def test_errors_belong_to_the_hierarchy() -> None:
    assert issubclass(LabelSetError, SegStudioError)


# ---------------------------------------------------------------------- JSON

names_st = st.lists(
    st.text(min_size=1, max_size=12).filter(lambda s: s.strip()),
    min_size=1,
    max_size=40,
    unique_by=lambda s: s.strip().casefold(),
)


@st.composite
def labelsets(draw: st.DrawFn) -> LabelSet:
    names = draw(names_st)
    keys = draw(
        st.lists(
            st.integers(0, (1 << 24) - 1),
            min_size=len(names) + 1,
            max_size=len(names) + 1,
            unique=True,
        )
    )
    colors = [((k >> 16) & 255, (k >> 8) & 255, k & 255) for k in keys]
    set_name = draw(st.text(min_size=1, max_size=10).filter(lambda s: s.strip()))
    classes = tuple(LabelClass(n, c) for n, c in zip(names, colors[1:], strict=True))
    return LabelSet(set_name, classes, colors[0])


@given(labelsets())
@settings(max_examples=60, deadline=None)
def test_json_round_trip(ls: LabelSet) -> None:
    assert LabelSet.from_json(ls.to_json()) == ls
    assert LabelSet.from_dict(json.loads(json.dumps(ls.to_dict()))) == ls


def test_to_dict_layout() -> None:
    ls = make_set([(1, 2, 3), (4, 5, 6)], unlabeled=(7, 8, 9), name="demo")
    assert ls.to_dict() == {
        "format": "segstudio.labelset",
        "version": 1,
        "name": "demo",
        "unlabeled_color": [7, 8, 9],
        "classes": [
            {"index": 0, "name": "c0", "color": [1, 2, 3]},
            {"index": 1, "name": "c1", "color": [4, 5, 6]},
        ],
    }
    text = ls.to_json()
    assert text.endswith("\n")
    assert json.loads(text) == ls.to_dict()


def test_from_dict_sorts_by_index() -> None:
    d = make_set([(1, 1, 1), (2, 2, 2), (3, 3, 3)]).to_dict()
    d["classes"] = [d["classes"][2], d["classes"][0], d["classes"][1]]
    assert LabelSet.from_dict(d).names == ("c0", "c1", "c2")


def test_from_dict_without_indices_keeps_list_order() -> None:
    d = {
        "name": "plain",
        "classes": [{"name": "b", "color": [1, 1, 1]}, {"name": "a", "color": [2, 2, 2]}],
    }
    ls = LabelSet.from_dict(d)
    assert ls.names == ("b", "a")
    assert ls.unlabeled_color == (0, 0, 0)


def test_from_dict_reads_camvid_layout() -> None:
    d = {
        "name": "CamVid-like",
        "void_index": 2,
        "void_color": [9, 9, 9],
        "image_size": [480, 360],
        "classes": [
            {"index": 1, "name": "Building", "color": [128, 0, 0]},
            {"index": 0, "name": "Sky", "color": [128, 128, 128]},
        ],
        "median_frequency_weights": [1.0, 2.0],
    }
    ls = LabelSet.from_dict(d)
    assert ls.names == ("Sky", "Building")
    assert ls.unlabeled_color == (9, 9, 9)


def good_dict() -> dict:
    return make_set([(1, 1, 1), (2, 2, 2)]).to_dict()


def _mutate(**changes: object):
    def build() -> object:
        d = good_dict()
        for k, v in changes.items():
            if v is KeyError:
                d.pop(k)
            else:
                d[k] = v
        return d

    return build


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: [1, 2], "JSON object"),
        (_mutate(format="labelme"), "not a SegStudio label set"),
        (_mutate(version=2), "newer SegStudio"),
        (_mutate(version="1"), "version"),
        (_mutate(name=KeyError), "missing key 'name'"),
        (_mutate(name=5), "'name' must be a string"),
        (_mutate(classes=KeyError), "missing key 'classes'"),
        (_mutate(classes={"a": 1}), "'classes' must be a list"),
        (_mutate(classes=[]), "empty"),
        (_mutate(classes=["road"]), r"classes\[0\] must be an object"),
        (_mutate(classes=[{"name": "a"}]), r"classes\[0\]: missing key 'color'"),
        (_mutate(classes=[{"color": [1, 2, 3]}]), r"classes\[0\]: missing key 'name'"),
        (_mutate(classes=[{"name": "a", "color": [1, 2]}]), r"classes\[0\].*3 integers"),
        (_mutate(classes=[{"name": "a", "color": "red"}]), r"classes\[0\].*colour"),
        (_mutate(classes=[{"name": "", "color": [1, 2, 3]}]), r"classes\[0\].*empty"),
        (
            _mutate(
                classes=[
                    {"index": 0, "name": "a", "color": [1, 2, 3]},
                    {"index": 2, "name": "b", "color": [1, 2, 4]},
                ]
            ),
            r"indices must be 0\.\.1",
        ),
        (
            _mutate(
                classes=[
                    {"index": 0, "name": "a", "color": [1, 2, 3]},
                    {"index": 0, "name": "b", "color": [1, 2, 4]},
                ]
            ),
            r"indices must be 0\.\.1",
        ),
        (
            _mutate(
                classes=[
                    {"index": 0, "name": "a", "color": [1, 2, 3]},
                    {"name": "b", "color": [1, 2, 4]},
                ]
            ),
            "every class has an 'index'",
        ),
        (
            _mutate(classes=[{"index": "0", "name": "a", "color": [1, 2, 3]}]),
            "'index' must be an integer",
        ),
        (
            _mutate(classes=[{"name": "a", "color": [1, 2, 3]}, {"name": "b", "color": [1, 2, 3]}]),
            "same colour",
        ),
        (_mutate(unlabeled_color=[1, 1, 1]), "unlabeled colour"),
        (_mutate(unlabeled_color=[0, 0]), "3 integers"),
    ],
)
def test_from_dict_rejects_bad_schema(build, pattern: str) -> None:
    with pytest.raises(LabelSetError, match=pattern):
        LabelSet.from_dict(build())


def test_a_dataset_list_with_a_black_class_gets_a_free_unlabeled_colour() -> None:
    # Weizmann horse's classes.json: background is black and no void colour is named
    raw = {
        "classes": [
            {"index": 0, "name": "background", "color": [0, 0, 0]},
            {"index": 1, "name": "horse", "color": [128, 0, 0]},
        ]
    }
    ls = LabelSet.from_dict(raw)
    assert ls.classes[0].color == (0, 0, 0)
    assert ls.unlabeled_color not in {c.color for c in ls.classes}
    # an explicit unlabeled colour is still checked, and a SegStudio file is exact
    with pytest.raises(LabelSetError, match="unlabeled colour"):
        LabelSet.from_dict({**raw, "void_color": [0, 0, 0]})


def test_from_dict_rejects_void_index_that_is_a_class() -> None:
    d = {
        "name": "x",
        "void_index": 1,
        "classes": [{"name": "a", "color": [1, 1, 1]}, {"name": "b", "color": [2, 2, 2]}],
    }
    with pytest.raises(LabelSetError, match="'void_index' 1 is the id of class 'b'"):
        LabelSet.from_dict(d)
    d["void_index"] = 300
    with pytest.raises(LabelSetError, match="void_index"):
        LabelSet.from_dict(d)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{\n  "name": "x",\n  "classes": [}\n', "line 3, column 15"),
        ("", "line 1, column 1"),
        ('{"name": "x",}', "line 1, column 14"),
    ],
)
def test_from_json_bad_json_gives_line_and_column(text: str, where: str) -> None:
    with pytest.raises(LabelSetError, match=f"not valid JSON.*{where}"):
        LabelSet.from_json(text)


# --------------------------------------------------------------------- files


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    ls = preset("voc")
    path = tmp_path / "labels.json"
    ls.save(path)
    assert LabelSet.load(path) == ls
    assert LabelSet.load(str(path)) == ls
    # Overwrite in place; no temporary files are left behind.
    other = make_set([(1, 2, 3)])
    other.save(path)
    assert LabelSet.load(path) == other
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.json"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_save_respects_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        make_set([(1, 2, 3)]).save(tmp_path / "a.json")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


def test_save_into_missing_folder_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "labels.json"
    with pytest.raises(LabelSetError, match=r"labels\.json"):
        make_set([(1, 2, 3)]).save(path)


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(LabelSetError, match=r"nope\.json: label set file not found"):
        LabelSet.load(path)


def test_load_folder(tmp_path: Path) -> None:
    with pytest.raises(LabelSetError, match="folder"):
        LabelSet.load(tmp_path)


def test_load_bad_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "name": "x",\n  "classes": [,]\n}\n', encoding="utf-8")
    with pytest.raises(LabelSetError, match=r"broken\.json: not valid JSON.*line 3, column 15"):
        LabelSet.load(path)


def test_load_bad_schema_names_file(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text('{"format": "segstudio.labelset", "version": 1, "name": "x"}', encoding="utf-8")
    with pytest.raises(LabelSetError, match=r"schema\.json: .*missing key 'classes'"):
        LabelSet.load(path)


def test_load_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "image.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(LabelSetError, match=r"image\.json"):
        LabelSet.load(path)


def test_load_duplicate_colours_file(tmp_path: Path) -> None:
    d = good_dict()
    d["classes"][1]["color"] = d["classes"][0]["color"]
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(LabelSetError, match=r"dup\.json: .*'c0' and 1 'c1' have the same colour"):
        LabelSet.load(path)


# ------------------------------------------------------------------- presets


def test_preset_keys_and_lookup() -> None:
    assert list(PRESETS) == ["camvid11", "camvid32", "voc", "cityscapes"]
    assert len(PRESETS) == 4
    assert "voc" in PRESETS and "VOC" not in PRESETS
    assert preset("VOC") is PRESETS["voc"]  # cached
    assert preset(" CamVid11 ") is preset("camvid11")
    with pytest.raises(KeyError):
        PRESETS["nope"]
    with pytest.raises(LabelSetError, match="camvid11, camvid32, voc, cityscapes"):
        preset("ade20k")


def test_preset_voc() -> None:
    voc = preset("voc")
    assert voc.names == tuple(VOC_NAMES)
    assert voc.classes[15] == LabelClass("person", (192, 128, 128))
    assert [c.color for c in voc.classes] == [voc_color(i) for i in range(21)]
    assert voc.unlabeled_color == (224, 224, 192) == voc_color(255)


def test_preset_cityscapes() -> None:
    cs = preset("cityscapes")
    assert cs.num_classes == 19
    assert cs.classes[0] == LabelClass("road", (128, 64, 128))
    assert [(c.name, c.color) for c in cs.classes] == CITYSCAPES
    assert cs.unlabeled_color == (0, 0, 0)


def test_preset_camvid32() -> None:
    cv = preset("camvid32")
    assert cv.num_classes == 31
    assert {c.name: c.color for c in cv.classes} == CAMVID32
    assert cv.unlabeled_color == (0, 0, 0)  # Void
    assert len({c.color for c in cv.classes} | {cv.unlabeled_color}) == 32


def test_preset_camvid11() -> None:
    cv = preset("camvid11")
    assert cv.names == (
        "Sky",
        "Building",
        "Pole",
        "Road",
        "Pavement",
        "Tree",
        "SignSymbol",
        "Fence",
        "Car",
        "Pedestrian",
        "Bicyclist",
    )
    assert cv.classes[4].color == (60, 40, 222)
    assert cv.unlabeled_color == (0, 0, 0)


def test_camvid_classes_json_equals_preset(camvid: Path) -> None:
    ls = LabelSet.load(camvid / "classes.json")
    assert ls == preset("camvid11")
    assert ls.same_classes(preset("camvid11"))
