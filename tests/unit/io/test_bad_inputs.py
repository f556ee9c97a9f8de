"""The bad-input corpus: every odd or broken file a user can hand SegStudio.

Each case writes one file (or a small dataset) and reads it the way SegStudio
does. The answer is either a correct result (checked) or one
:class:`~segstudio.core.errors.SegStudioError` whose message is one line, names
the file and says what is wrong: never a traceback from a library, a crash, or
memory spent on a file that is refused anyway. The command line's side (exit 2,
one stderr line) is in ``tests/unit/cli/test_bad_inputs_cli.py``, which reuses
these makers.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from segstudio.core.errors import (
    CorruptImageError,
    DatasetError,
    EmptyImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    LabelReadError,
    LabelSetError,
    ModelFileError,
    SegStudioError,
    UnsupportedImageError,
)
from segstudio.core.jobs import drive
from segstudio.core.labelset import LabelClass, LabelSet, read_classes_file
from segstudio.io.datasets import import_dataset
from segstudio.io.datasets.coco import read_coco
from segstudio.io.datasets.cvat import read_cvat
from segstudio.io.images import MAX_PIXELS_ENV, LoadedImage, read_image, read_label_map
from segstudio.io.project import Project
from segstudio.io.project.models import read_metadata as read_model_metadata

H, W = 12, 16
LS = LabelSet("two", (LabelClass("Sky", (128, 128, 128)), LabelClass("Road", (128, 64, 128))))


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case runs under the default, memory-derived pixel limit."""
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)


# --------------------------------------------------------------------------- file makers


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header(width: int, height: int, depth: int = 8, color_type: int = 2) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    )


def rgb(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(path: Path, arr: np.ndarray, **kw: Any) -> Path:
    Image.fromarray(arr).save(path, **kw)
    return path


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def truncated(path: Path, keep: float) -> Path:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])
    return path


def huge_png_header(path: Path) -> Path:
    """A PNG header claiming 100000 x 100000 pixels, and no pixel data."""
    return write(path, _png_header(100_000, 100_000) + _chunk(b"IEND", b""))


def huge_tiff_header(path: Path) -> Path:
    """A classic TIFF whose one IFD claims 100000 x 100000 8-bit pixels, and no data."""
    tags = [  # (tag, type SHORT=3 / LONG=4, value)
        (256, 4, 100_000), (257, 4, 100_000), (258, 3, 8), (259, 3, 1), (262, 3, 1),
        (273, 4, 8), (277, 3, 1), (278, 4, 100_000), (279, 4, 10_000_000_000 % (1 << 32)),
    ]  # fmt: skip
    ifd = struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        ifd += struct.pack("<HHI", tag, kind, 1)
        ifd += struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
    ifd += struct.pack("<I", 0)
    return write(path, b"II*\x00" + struct.pack("<I", 8) + ifd)


def huge_jpeg_header(path: Path) -> Path:
    """A JPEG whose frame header claims 65000 x 65000 pixels."""
    buf = io.BytesIO()
    Image.fromarray(rgb()).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 65_000, 65_000)
    return write(path, bytes(data))


def huge_bmp_header(path: Path) -> Path:
    buf = io.BytesIO()
    Image.fromarray(rgb()).save(buf, "BMP")
    data = bytearray(buf.getvalue())
    struct.pack_into("<ii", data, 18, 100_000, 100_000)
    return write(path, bytes(data))


def bomb_png(path: Path) -> Path:
    """A real, valid 33000 x 33000 1-bit PNG of zeros: 130 kB that decode to 1.1 gigapixels
    (more than the default ceiling on any machine)."""
    side = 33_000
    row = b"\x00" * (1 + (side + 7) // 8)
    z = zlib.compressobj(9)
    parts = [z.compress(row * 1000) for _ in range(side // 1000)]
    parts += [z.compress(row * (side % 1000)), z.flush()]
    idat = b"".join(parts)
    return write(path, _png_header(side, side, 1, 0) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


def palette_png(path: Path) -> Path:
    index = (np.arange(H * W).reshape(H, W) % 5).astype(np.uint8)
    im = Image.fromarray(index)
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 99, 199])
    im.save(path)
    return path


def exif_rotated_jpeg(path: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.fromarray(rgb()).save(path, exif=exif.tobytes(), quality=95)
    return path


def broken_exif_jpeg(path: Path) -> Path:
    Image.fromarray(rgb()).save(path, exif=b"Exif\x00\x00II*\x00\xff\xff\xff\xff")
    return path


def animated(path: Path, fmt: str, **kw: Any) -> Path:
    frames = [Image.fromarray(np.full((H, W, 3), c, np.uint8)) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=50, **kw)
    return path


def float_tiff(path: Path, nan: bool = False) -> Path:
    a = np.linspace(-1.5, 2.5, H * W, dtype=np.float32).reshape(H, W)
    if nan:
        a[0, :3] = (np.nan, np.inf, -np.inf)
    tifffile.imwrite(path, a)
    return path


def cmyk_jpeg(path: Path) -> Path:
    Image.fromarray(np.full((H, W, 3), (200, 30, 40), np.uint8)).convert("CMYK").save(
        path, quality=95
    )
    return path


# --------------------------------------------------------------------------- checks


def is_rgb(h: int = H, w: int = W) -> Callable[[Any], None]:
    def check(img: LoadedImage) -> None:
        assert img.rgb.shape == (h, w, 3) and img.rgb.dtype == np.uint8
        assert img.rgb.flags.c_contiguous

    return check


def all_of(*checks: Callable[[Any], None]) -> Callable[[Any], None]:
    def check(result: Any) -> None:
        for c in checks:
            c(result)

    return check


def first_frame(img: LoadedImage) -> None:
    assert img.rgb.shape == (H, W, 3)
    np.testing.assert_array_equal(img.rgb[0, 0], (255, 0, 0))  # frame 1 is red, frame 2 blue
    assert any("frame 1 of 2" in n or "page 1 of" in n for n in img.notes), img.notes


# --------------------------------------------------------------------------- datasets


def coco_dataset(root: Path, doc: Any, *, raw: bytes | None = None) -> Path:
    """``root/images/train/a.png`` (H x W) and ``annotations/instances_train.json``."""
    (root / "images" / "train").mkdir(parents=True)
    (root / "annotations").mkdir()
    save(root / "images" / "train" / "a.png", rgb())
    path = root / "annotations" / "instances_train.json"
    path.write_bytes(raw if raw is not None else json.dumps(doc).encode())
    return path


def coco_doc(
    *, image: dict[str, Any] | None = None, seg: Any = None, cats: Any = None, **top: Any
) -> dict[str, Any]:
    """A one-image COCO document, with one annotation when ``seg`` is given."""
    img = {"id": 1, "file_name": "a.png", "height": H, "width": W, **(image or {})}
    doc: dict[str, Any] = {
        "images": [img],
        "categories": cats if cats is not None else [{"id": 1, "name": "Sky"}],
        "annotations": [],
    }
    if seg is not None:
        doc["annotations"] = [{"id": 7, "image_id": 1, "category_id": 1, "segmentation": seg}]
    doc.update(top)
    return doc


def coco(doc: Any = None, **kw: Any) -> Callable[[Path], Path]:
    return lambda d: coco_dataset(d / "coco", doc if doc is not None else coco_doc(**kw))


def coco_raw(data: bytes) -> Callable[[Path], Path]:
    return lambda d: coco_dataset(d / "coco", None, raw=data)


def read_coco_file(ann: Path) -> tuple[LabelSet, list[np.ndarray]]:
    """What the import does with a COCO folder: read it, then decode every mask."""
    ls, pairs, decode = read_coco(ann.parent.parent, None, None, [])
    return ls, [decode(p.mask) for p in pairs]


def coco_mask(expected: np.ndarray) -> Callable[[Any], None]:
    def check(result: tuple[LabelSet, list[np.ndarray]]) -> None:
        _, masks = result
        assert len(masks) == 1
        np.testing.assert_array_equal(masks[0], expected)

    return check


def rle_string(mask: np.ndarray) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [H, W], "counts": rle["counts"].decode("ascii")}


_BLOB = np.zeros((H, W), np.uint8)
_BLOB[2:7, 3:11] = 1
_BLOB_LABELS = np.where(_BLOB > 0, 0, 255).astype(np.uint8)
_TRI_LABELS = np.full((H, W), 255, np.uint8)
_COLUMNS_3_4 = np.full((H, W), 255, np.uint8)
_COLUMNS_3_4[:, 3:5] = 0  # RLE runs go down the columns: 3 empty, 2 set, the rest empty


def cvat_dataset(labelmap: bytes) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        root = d / "cvat"
        for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
            (root / sub).mkdir(parents=True)
        save(root / "JPEGImages" / "a.png", rgb())
        save(root / "SegmentationClass" / "a.png", np.zeros((H, W, 3), np.uint8))
        (root / "ImageSets" / "Segmentation" / "default.txt").write_text("a\n")
        return write(root / "labelmap.txt", labelmap)

    return make


def read_cvat_folder(labelmap: Path) -> tuple[LabelSet, list[np.ndarray]]:
    ls, pairs, decode = read_cvat(labelmap.parent, None, None, [])
    return ls, [decode(p.mask) for p in pairs]


def index_dataset(
    mask: np.ndarray | None = None, *, colour: np.ndarray | None = None
) -> Callable[[Path], Path]:
    """``images/a.png`` (H x W), ``labels/a.png`` (``mask``, or the RGB ``colour``),
    ``classes.json``; returns the mask file."""

    def make(d: Path) -> Path:
        root = d / "ds"
        (root / "images").mkdir(parents=True)
        (root / "labels").mkdir()
        save(root / "images" / "a.png", rgb())
        LS.save(root / "classes.json")
        return save(root / "labels" / "a.png", colour if colour is not None else mask)

    return make


def import_into_project(fmt: str) -> Callable[[Path], Any]:
    def read(mask: Path) -> Any:
        source = mask.parent.parent
        (source.parent / "project").mkdir(exist_ok=True)
        project = Project.open(source.parent / "project")
        try:
            return drive(import_dataset(project, source, fmt))
        finally:
            project.close()

    return read


# --------------------------------------------------------------------------- models


def model_file(path: Path, edit: Callable[[dict[str, Any]], Any] | None = None, **kw: Any) -> Path:
    """A tiny SegNet-Basic model file; ``edit`` changes its metadata before it is written."""
    from safetensors.torch import save_file

    from segstudio.model.arch import ArchSpec
    from segstudio.model.files import METADATA_KEY, new_model

    model = new_model(ArchSpec("segnet_basic", {"width": 0.125, "depth": 1}), LS)
    state = {k: v.contiguous() for k, v in model.network.state_dict().items()}
    meta = model.info.to_dict()
    text: str | None = json.dumps(meta)
    if edit is not None:
        changed = edit(meta)
        text = changed if isinstance(changed, str) or changed is NO_METADATA else json.dumps(meta)
        text = None if text is NO_METADATA else text
    if kw.get("nan"):
        first = next(k for k, v in state.items() if v.is_floating_point())
        state[first] = state[first].clone()
        state[first].view(-1)[0] = float("nan")
    save_file(state, str(path), metadata={METADATA_KEY: text} if text is not None else None)
    return path


NO_METADATA: Any = object()


def lie_width(meta: dict[str, Any]) -> None:
    meta["arch"]["params"]["width"] = 4.0  # the file holds width 0.125 weights


def lie_classes(meta: dict[str, Any]) -> None:
    meta["labelset"]["classes"].append({"index": 2, "name": "Car", "color": [64, 0, 128]})


def load(path: Path) -> Any:
    from segstudio.model.files import load_model

    return load_model(path)


def loads_fine(model: Any) -> None:
    assert model.info.labelset.num_classes == 2


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Case:
    """One bad (or merely odd) input: how to make it, how SegStudio reads it, the answer.

    ``error`` None means a correct result, checked by ``check``; otherwise the
    read must raise ``error`` whose message matches ``fault``.
    """

    id: str
    make: Callable[[Path], Path]
    read: Callable[[Path], Any]
    error: type[SegStudioError] | None
    fault: str = ""
    check: Callable[[Any], None] | None = None


def _img(id: str, make: Callable[[Path], Path], error: Any, fault: str = "", check: Any = None):
    return Case(id, make, read_image, error, fault, check)


def _map(id: str, make: Callable[[Path], Path], error: Any, fault: str = "", check: Any = None):
    return Case(id, make, read_label_map, error, fault, check)


def _cls(id: str, text: str | bytes, fault: str, error: Any = LabelSetError) -> Case:
    data = text.encode() if isinstance(text, str) else text
    return Case(id, lambda d: write(d / "classes.json", data), read_classes_file, error, fault)


def _coco(id: str, make: Callable[[Path], Path], fault: str) -> Case:
    return Case(id, make, read_coco_file, DatasetError, fault)


def _model(id: str, make: Callable[[Path], Path], fault: str, error: Any = ModelFileError):
    return Case(id, make, load, error, fault)


def _text_model(data: bytes) -> Callable[[Path], Path]:
    return lambda d: write(d / "model.safetensors", data)


def _truncated_model(d: Path) -> Path:
    return truncated(model_file(d / "model.safetensors"), 0.6)


DEEP = "[" * 100_000 + "]" * 100_000
BAD_UTF8 = b'{"name": "caf\xe9", "classes": []}'

CASES: list[Case] = [
    # ----- images: broken, not images, or too large ----------------------------------
    _img("empty", lambda d: write(d / "e.png", b""), EmptyImageError, "empty"),
    _img("truncated-png", lambda d: truncated(save(d / "t.png", rgb()), 0.5),
         CorruptImageError, "truncated"),
    _img("truncated-jpeg", lambda d: truncated(save(d / "t.jpg", rgb(64, 64)), 0.5),
         CorruptImageError, "truncated|corrupt"),
    _img("truncated-tiff", lambda d: truncated(save(d / "t.tif", rgb(64, 64)), 0.5),
         CorruptImageError, "corrupt or truncated"),
    _img("text-as-png", lambda d: write(d / "notes.png", b"just some text\n"),
         CorruptImageError, "not a PNG, JPEG"),
    _img("html-as-jpeg", lambda d: write(d / "page.jpg", b"<html><body>404</body></html>"),
         CorruptImageError, "not a PNG, JPEG"),
    _img("random-bytes", lambda d: write(d / "r.webp", bytes(range(256)) * 8),
         CorruptImageError, "not a PNG, JPEG"),
    _img("png-magic-only", lambda d: write(d / "m.png", b"\x89PNG\r\n\x1a\n"),
         CorruptImageError, "PNG"),
    _img("zero-size-png", lambda d: write(d / "z.png", _png_header(0, 5) + _chunk(b"IEND", b"")),
         CorruptImageError, "PNG"),
    _img("folder-named-png", lambda d: (d / "dir.png").mkdir() or d / "dir.png",
         ImageNotFoundError, "folder"),
    _img("missing", lambda d: d / "absent.png", ImageNotFoundError, "no such file"),
    _img("bomb", lambda d: bomb_png(d / "bomb.png"), ImageTooLargeError,
         r"33000 x 33000 = 1,089,000,000 pixels"),
    _img("huge-png-header", lambda d: huge_png_header(d / "h.png"), ImageTooLargeError,
         rf"100000 x 100000 .*{MAX_PIXELS_ENV}=100000x100000"),
    _img("huge-tiff-header", lambda d: huge_tiff_header(d / "h.tif"), ImageTooLargeError,
         "100000 x 100000"),
    _img("huge-jpeg-header", lambda d: huge_jpeg_header(d / "h.jpg"), ImageTooLargeError,
         "65000 x 65000"),
    _img("huge-bmp-header", lambda d: huge_bmp_header(d / "h.bmp"), ImageTooLargeError,
         "100000 x 100000"),
    _img("tiff-6-channels",
         lambda d: tifffile.imwrite(d / "six.tif", np.zeros((5, 5, 6), np.uint8),
                                    photometric="minisblack", planarconfig="contig")
         or d / "six.tif",
         UnsupportedImageError, "6 channels"),
    _img("tiff-complex",
         lambda d: tifffile.imwrite(d / "c.tif", np.zeros((5, 5), np.complex64)) or d / "c.tif",
         UnsupportedImageError, "complex64"),
    # ----- images: odd but valid -----------------------------------------------------
    _img("16-bit-gray", lambda d: save(d / "g16.png", (np.arange(H * W, dtype=np.uint16)
                                                       .reshape(H, W) * 300)),
         None, check=all_of(is_rgb(), lambda i: (i.raw.dtype == np.uint16) or pytest.fail())),
    _img("16-bit-rgb",
         lambda d: cv2_write(d / "c16.png", np.full((H, W, 3), 40000, np.uint16)),
         None, check=all_of(is_rgb(), lambda i: (i.raw.dtype == np.uint16
                                                 and i.bit_depth == 16) or pytest.fail())),
    _img("float-tiff", lambda d: float_tiff(d / "f.tif"), None,
         check=all_of(is_rgb(), lambda i: (i.raw.dtype == np.float32) or pytest.fail())),
    _img("float-tiff-nan-inf", lambda d: float_tiff(d / "nan.tif", nan=True), None,
         check=is_rgb()),
    _img("cmyk-jpeg", lambda d: cmyk_jpeg(d / "cmyk.jpg"), None,
         check=all_of(is_rgb(), lambda i: np.testing.assert_allclose(
             i.rgb[4, 4], (200, 30, 40), atol=6))),
    _img("palette-png", lambda d: palette_png(d / "p.png"), None,
         check=all_of(is_rgb(), lambda i: np.testing.assert_array_equal(
             i.rgb[0, :3], [(0, 0, 0), (255, 0, 0), (0, 255, 0)]))),
    _img("exif-rotated-jpeg", lambda d: exif_rotated_jpeg(d / "r.jpg"), None, check=is_rgb(W, H)),
    _img("broken-exif-jpeg", lambda d: broken_exif_jpeg(d / "x.jpg"), None, check=is_rgb()),
    _img("rgba-png", lambda d: save(d / "a.png", np.dstack([rgb(), np.full((H, W), 7, np.uint8)])),
         None, check=all_of(is_rgb(), lambda i: i.has_alpha or pytest.fail())),
    _img("gray-alpha-png", lambda d: save(d / "la.png", np.zeros((H, W, 2), np.uint8)), None,
         check=is_rgb()),
    _img("bilevel-png", lambda d: save(d / "b.png", np.eye(H, W, dtype=bool)), None,
         check=is_rgb()),
    _img("animated-gif", lambda d: animated(d / "a.gif", "GIF"), None, check=first_frame),
    _img("animated-png", lambda d: animated(d / "a.png", "PNG"), None, check=first_frame),
    _img("animated-webp", lambda d: animated(d / "a.webp", "WEBP", lossless=True), None,
         check=first_frame),
    _img("multi-page-tiff",
         lambda d: tifffile.imwrite(d / "p.tif", np.stack([np.full((H, W, 3), (255, 0, 0),
                                    np.uint8)] * 5), photometric="rgb") or d / "p.tif",
         None, check=first_frame),
    _img("still-gif", lambda d: save(d / "s.gif", rgb()), None,
         check=all_of(is_rgb(), lambda i: (i.notes == ()) or pytest.fail())),
    _img("jpeg-named-png", lambda d: save(d / "really.png", rgb(), format="JPEG"), None,
         check=is_rgb()),
    # ----- label maps ----------------------------------------------------------------
    _map("map-colour-coded", lambda d: save(d / "m.png", rgb()), LabelReadError, "colour-coded"),
    _map("map-16-bit-over-255",
         lambda d: save(d / "m16.png", np.full((H, W), 300, np.uint16)),
         LabelReadError, "values from 300 to 300"),
    _map("map-float", lambda d: float_tiff(d / "mf.tif"), LabelReadError, "float32"),
    _map("map-transparent",
         lambda d: save(d / "mt.png", np.dstack([np.zeros((H, W, 3), np.uint8),
                                                 np.zeros((H, W), np.uint8)])),
         LabelReadError, "transparent"),
    _map("map-truncated", lambda d: truncated(save(d / "mc.png", np.zeros((H, W), np.uint8)), 0.5),
         CorruptImageError, "truncated"),
    _map("map-gray-gif", lambda d: save(d / "m.gif", np.full((H, W), 3, np.uint8)), None,
         check=lambda m: np.testing.assert_array_equal(m, np.full((H, W), 3, np.uint8))),
    Case("import-wrong-size-mask", index_dataset(np.zeros((5, 7), np.uint8)),
         import_into_project("index"), DatasetError, r"mask is 7x5, image a.png is 16x12"),
    Case("import-unknown-ids", index_dataset(np.full((H, W), 9, np.uint8)),
         import_into_project("index"), DatasetError, r"neither class ids"),
    Case("import-unknown-colours", index_dataset(colour=np.full((H, W, 3), 17, np.uint8)),
         import_into_project("rgb"), DatasetError, r"\(17, 17, 17\) x 192"),
    # ----- classes JSON --------------------------------------------------------------
    _cls("classes-not-json", "{name: 'x'", "not valid JSON"),
    _cls("classes-deeply-nested", DEEP, "nested too deeply"),
    _cls("classes-not-utf8", BAD_UTF8, "invalid UTF-8"),
    _cls("classes-top-level-list", "[1, 2]", "must be a JSON object"),
    _cls("classes-empty-file", "", "not valid JSON"),
    _cls("classes-no-classes", '{"name": "x"}', "missing key 'classes'"),
    _cls("classes-empty-list", '{"classes": []}', "is empty"),
    _cls("classes-not-a-list", '{"classes": {"a": 1}}', "must be a list"),
    _cls("classes-bad-colour", '{"classes": [{"name": "a", "color": [300, 0, 0]}]}', "300"),
    _cls("classes-colour-text", '{"classes": [{"name": "a", "color": "red"}]}', "colo"),
    _cls("classes-duplicate-names",
         '{"classes": [{"name": "a", "color": [1, 2, 3]}, {"name": "A", "color": [4, 5, 6]}]}',
         "(?i)duplicate|twice|same name"),
    _cls("classes-void-collides",
         '{"void_index": 0, "classes": [{"name": "a", "color": [1, 2, 3]}]}', "void_index"),
    _cls("classes-too-many",
         json.dumps({"classes": [{"name": f"c{i}", "color": [i, i // 2, 7]} for i in range(256)]}),
         "(?i)255|too many"),
    Case("classes-huge-file",
         lambda d: os.truncate(write(d / "classes.json", b"{"), 17 * 1024 * 1024)
         or d / "classes.json",
         read_classes_file, LabelSetError, "too large"),
    # ----- COCO ----------------------------------------------------------------------
    _coco("coco-negative-height", coco(image={"height": -8}), "height -8 and width 16"),
    _coco("coco-zero-width", coco(image={"width": 0}), "must be positive"),
    _coco("coco-size-text", coco(image={"height": "tall"}), "must be integers"),
    _coco("coco-60000-square", coco(image={"height": 60_000, "width": 60_000}),
          rf"60000 x 60000 = 3,600,000,000 pixels.*{MAX_PIXELS_ENV}=60000x60000"),
    _coco("coco-rle-counts-1e12", coco(seg={"size": [H, W], "counts": [10**12]}),
          "add up to 1,000,000,000,000"),
    _coco("coco-rle-counts-short", coco(seg={"size": [H, W], "counts": [5, 7]}),
          f"add up to 12 pixels, the {W} x {H} image has {H * W}"),
    _coco("coco-rle-negative", coco(seg={"size": [H, W], "counts": [-5, H * W + 5]}),
          "negative"),
    _coco("coco-rle-size-mismatch", coco(seg={"size": [H + 1, W], "counts": [(H + 1) * W]}),
          "is not the image's"),
    _coco("coco-rle-string-garbage", coco(seg={"size": [H, W], "counts": "\x01\x02"}),
          "character"),
    _coco("coco-rle-string-cut", coco(seg={"size": [H, W], "counts": "0" + chr(48 + 0x20)}),
          "ends in the middle"),
    _coco("coco-rle-string-overflow", coco(seg={"size": [H, W], "counts": "o" * 40}),
          "too large"),
    _coco("coco-polygon-huge", coco(seg=[[0, 0, 1e9, 0, 1e9, 1e9]]), "far outside"),
    _coco("coco-polygon-negative-huge", coco(seg=[[0, 0, -1e12, 5, 3, 3]]), "far outside"),
    _coco("coco-polygon-nan", coco_raw(json.dumps(coco_doc(seg=[[0, 0, 5, 0, 5, 5]]))
                                       .replace("5, 5]", "NaN, 5]").encode()), "NaN"),
    _coco("coco-polygon-odd", coco(seg=[[0, 0, 5, 0, 5]]), "x, y pairs"),
    _coco("coco-polygon-text", coco(seg=[["a", "b", "c", "d", "e", "f"]]), "list of numbers"),
    _coco("coco-polygon-too-long",
          coco(seg=[[0, 0, W, H] * 150_000 + [0, 0]]), "pixels long"),
    _coco("coco-segmentation-number", coco(seg=5), "neither polygons nor RLE"),
    _coco("coco-images-5", coco(coco_doc(images=5)), "'images' must be a list"),
    _coco("coco-annotations-dict", coco(coco_doc(annotations={"a": 1})),
          "'annotations' must be a list"),
    _coco("coco-image-entry-text", coco(coco_doc(images=["a.png"])), "not an object"),
    _coco("coco-category-no-name", coco(cats=[{"id": 1}]), "category 1 has no name"),
    _coco("coco-category-id-text", coco(cats=[{"id": "one", "name": "x"}]), "no integer id"),
    _coco("coco-no-categories", coco(cats=[]), "no categories"),
    _coco("coco-unknown-category", coco(seg=[[0, 0, 5, 0, 5, 5]], cats=[{"id": 2, "name": "x"}]),
          "has category 1"),
    _coco("coco-not-utf8", coco_raw(b'{"images": [], "categories": [{"id": 1, "name": "\xe9"}]}'),
          "not UTF-8"),
    _coco("coco-deeply-nested", coco_raw(b'{"images": ' + DEEP.encode() + b"}"),
          "nested too deeply"),
    _coco("coco-not-json", coco_raw(b"{images: nope"), "not a COCO JSON"),
    _coco("coco-empty-file", coco_raw(b""), "not a COCO JSON"),
    _coco("coco-top-level-list", coco_raw(b"[]"), "top level is not an object"),
    _coco("coco-duplicate-image-id", coco(coco_doc(images=[
        {"id": 1, "file_name": "a.png", "height": H, "width": W},
        {"id": 1, "file_name": "b.png", "height": H, "width": W}])), "two image entries"),
    _coco("coco-dotdot-file-name", coco(image={"file_name": "../../secret.png"}),
          r"leads out of the dataset"),
    _coco("coco-dotdot-inside-name", coco(image={"file_name": "images/../../../secret.png"}),
          r"leads out of the dataset"),
    _coco("coco-absolute-file-name", coco(image={"file_name": "/etc/passwd"}), "absolute"),
    _coco("coco-windows-absolute", coco(image={"file_name": "C:\\data\\a.png"}), "absolute"),
    _coco("coco-windows-dotdot", coco(image={"file_name": "..\\..\\secret.png"}),
          "leads out of the dataset"),
    _coco("coco-file-name-number", coco(image={"file_name": 42}), "no usable file_name"),
    Case("coco-rle-string-valid", coco(seg=rle_string(_BLOB)), read_coco_file, None,
         check=coco_mask(_BLOB_LABELS)),
    Case("coco-rle-list-valid",
         coco(seg={"size": [H, W], "counts": [H * 3, H * 2, H * (W - 5)]}), read_coco_file, None,
         check=coco_mask(_COLUMNS_3_4)),
    Case("coco-polygon-slightly-outside", coco(seg=[[-3, -3, 20, -3, 20, 15, -3, 15]]),
         read_coco_file, None, check=coco_mask(np.zeros((H, W), np.uint8))),
    Case("coco-box-only", coco(seg=[]), read_coco_file, None, check=coco_mask(_TRI_LABELS)),
    Case("coco-bad-colour-ignored", coco(cats=[{"id": 1, "name": "Sky", "color": "red"}]),
         read_coco_file, None, check=lambda r: (r[0].names == ("Sky",)) or pytest.fail()),
    # ----- CVAT ----------------------------------------------------------------------
    Case("cvat-labelmap-not-utf8", cvat_dataset(b"caf\xe9:1,2,3::\n"), read_cvat_folder,
         DatasetError, "not UTF-8"),
    Case("cvat-labelmap-malformed", cvat_dataset(b"road\n"), read_cvat_folder, DatasetError,
         r"labelmap.txt:1: expected 'name:r,g,b"),
    Case("cvat-labelmap-colour-300", cvat_dataset(b"road:300,0,0::\n"), read_cvat_folder,
         DatasetError, "not r,g,b in 0..255"),
    Case("cvat-labelmap-background-only", cvat_dataset(b"background:0,0,0::\n"),
         read_cvat_folder, DatasetError, "no classes besides background"),
    Case("cvat-labelmap-duplicate", cvat_dataset(b"road:1,2,3::\nroad:4,5,6::\n"),
         read_cvat_folder, DatasetError, "labelmap.txt"),
    Case("cvat-valid", cvat_dataset(b"background:0,0,0::\nroad:128,64,128::\n"),
         read_cvat_folder, None,
         check=lambda r: np.testing.assert_array_equal(r[1][0], np.full((H, W), 255))),
    # ----- model files ---------------------------------------------------------------
    _model("model-pickle", _text_model(pickle.dumps({"weights": [1, 2, 3]})), "not a readable"),
    _model("model-truncated", _truncated_model, "not a readable"),
    _model("model-empty", _text_model(b""), "empty"),
    _model("model-text", _text_model(b"hello, I am not a model\n"), "not a readable"),
    _model("model-lies-width", lambda d: model_file(d / "model.safetensors", lie_width),
           r"metadata does not describe these weights"),
    _model("model-lies-classes", lambda d: model_file(d / "model.safetensors", lie_classes),
           r"metadata does not describe these weights"),
    _model("model-metadata-nested", lambda d: model_file(d / "model.safetensors",
                                                          lambda m: DEEP), "nested too deeply"),
    _model("model-metadata-not-json", lambda d: model_file(d / "model.safetensors",
                                                            lambda m: "{oops"), "not valid JSON"),
    _model("model-no-metadata",
           lambda d: model_file(d / "model.safetensors", lambda m: NO_METADATA),
           "not a SegStudio model"),
    _model("model-unknown-arch", lambda d: model_file(
        d / "model.safetensors", lambda m: m["arch"].update(name="resnet9000")), "resnet9000"),
    _model("model-width-out-of-range", lambda d: model_file(
        d / "model.safetensors", lambda m: m["arch"]["params"].update(width=1e6)), "width"),
    _model("model-nan-weights", lambda d: model_file(d / "model.safetensors", nan=True),
           "NaN or infinite"),
    Case("model-valid", lambda d: model_file(d / "model.safetensors"), load, None,
         check=loads_fine),
    Case("model-list-metadata-nested",  # the project's model list reads headers without torch
         lambda d: model_file(d / "model.safetensors", lambda m: DEEP), read_model_metadata,
         ModelFileError, "nested too deeply"),
]  # fmt: skip


def cv2_write(path: Path, arr: np.ndarray) -> Path:
    import cv2

    assert cv2.imwrite(str(path), arr)
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    path = case.make(tmp_path)
    if case.error is None:
        result = case.read(path)
        assert case.check is not None
        case.check(result)
        return
    with pytest.raises(SegStudioError) as exc:
        case.read(path)
    assert isinstance(exc.value, case.error), f"{type(exc.value).__name__}: {exc.value}"
    message = str(exc.value)
    assert "\n" not in message, message
    assert path.name in message, f"the message does not name {path.name}: {message}"
    assert re.search(case.fault, message), f"{case.fault!r} not in: {message}"


def test_corpus_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


def test_coco_never_reads_outside_the_dataset(tmp_path: Path) -> None:
    secret = save(tmp_path / "secret.png", rgb())
    for name in ("../../secret.png", str(secret)):
        root = tmp_path / f"ds{len(name)}"
        ann = coco_dataset(root, coco_doc(image={"file_name": name}))
        with pytest.raises(DatasetError, match="dataset folder"):
            read_coco(root, None, None, [])
        assert ann.is_file()


def test_coco_rle_decoding_matches_pycocotools(tmp_path: Path) -> None:
    from pycocotools import mask as mask_utils

    from segstudio.io.datasets.coco import ann_to_mask

    rng = np.random.default_rng(5)
    for h, w in ((1, 1), (7, 3), (40, 61), (128, 128)):
        for density in (0.0, 0.1, 0.5, 1.0):
            m = (rng.random((h, w)) < density).astype(np.uint8)
            rle = mask_utils.encode(np.asfortranarray(m))
            ours = ann_to_mask({"size": [h, w], "counts": rle["counts"].decode()}, h, w, "t")
            np.testing.assert_array_equal(ours, mask_utils.decode(rle))
            np.testing.assert_array_equal(ours, m)


def test_a_folder_with_a_name_that_is_not_utf8_still_opens(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    save(folder / "ok.png", rgb())
    try:
        with open(os.fsencode(folder) + b"/caf\xe9.png", "wb") as fh:
            fh.write(b"x")
    except (OSError, ValueError):
        pytest.skip("this file system does not allow a name that is not UTF-8")
    project = Project.open(folder)
    try:
        assert project.scan() == 1
        assert [r.name for r in project.images()] == ["ok.png"]
    finally:
        project.close()
