"""Model files round-trip and refuse every kind of bad file with a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from segstudio.core.errors import LabelSetMismatchError, ModelFileError
from segstudio.core.labelset import preset
from segstudio.model.arch import ArchSpec
from segstudio.model.files import (
    METADATA_KEY,
    LoadedModel,
    load_model,
    new_model,
    read_model_info,
    save_model,
)

SPEC = ArchSpec("segnet", {"width": 0.125})


@pytest.fixture
def model() -> LoadedModel:
    return new_model(SPEC, preset("camvid11"), seed=3)


@pytest.fixture
def saved(tmp_path: Path, model: LoadedModel) -> Path:
    return save_model(tmp_path / "m.safetensors", model)


def test_round_trip_rebuilds_network_and_metadata(saved: Path, model: LoadedModel) -> None:
    loaded = load_model(saved)
    assert loaded.info.arch == ArchSpec("segnet", {"width": 0.125, "in_channels": 3})
    assert loaded.info.labelset == model.info.labelset
    assert loaded.info.normalization == model.info.normalization
    assert loaded.info.provenance["kind"] == "untrained"
    for (ka, a), (kb, b) in zip(
        model.network.state_dict().items(), loaded.network.state_dict().items(), strict=True
    ):
        assert ka == kb
        assert torch.equal(a, b)
    x = torch.randn(1, 3, 37, 51)
    with torch.no_grad():
        assert torch.equal(model.network.eval()(x), loaded.network(x))
    assert not loaded.network.training


def test_info_reads_header_only(saved: Path) -> None:
    info = read_model_info(saved)
    assert info.labelset.num_classes == 11
    assert info.to_dict()["format"] == "segstudio.model"


def test_new_model_is_reproducible_from_seed() -> None:
    a = new_model(SPEC, preset("voc"), seed=1).network.state_dict()
    b = new_model(SPEC, preset("voc"), seed=1).network.state_dict()
    c = new_model(SPEC, preset("voc"), seed=2).network.state_dict()
    key = next(k for k in a if k.endswith("weight"))
    assert torch.equal(a[key], b[key])
    assert not torch.equal(a[key], c[key])


def test_labelset_mismatch_is_refused(saved: Path) -> None:
    with pytest.raises(LabelSetMismatchError, match="classes"):
        load_model(saved, expect_labelset=preset("voc"))
    assert load_model(saved, expect_labelset=preset("camvid11")).info.labelset.num_classes == 11


def _write_with_meta(path: Path, model: LoadedModel, meta: dict | None) -> Path:
    state = {k: v.contiguous() for k, v in model.network.state_dict().items()}
    save_file(state, str(path), metadata=meta)
    return path


@pytest.mark.parametrize(
    ("maker", "message"),
    [
        (lambda p, m: p, "not found"),
        (lambda p, m: (p.write_bytes(b""), p)[1], "empty"),
        (lambda p, m: (p.mkdir(), p)[1], "folder"),
        (lambda p, m: (p.write_bytes(b"\x00garbage" * 100), p)[1], "not a readable model"),
        (lambda p, m: (p.write_text('{"a": 1}'), p)[1], "not a readable model"),
        (lambda p, m: _write_with_meta(p, m, None), "not a SegStudio model"),
        (lambda p, m: _write_with_meta(p, m, {METADATA_KEY: "{not json"}), "not valid JSON"),
        (lambda p, m: _write_with_meta(p, m, {METADATA_KEY: '{"format": "x"}'}), "not a SegStudio"),
    ],
    ids=["missing", "empty", "folder", "garbage", "json", "no-meta", "bad-json", "wrong-format"],
)
def test_bad_files_are_refused(tmp_path: Path, model: LoadedModel, maker, message: str) -> None:
    path = maker(tmp_path / "bad.safetensors", model)
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(path)
    assert "bad.safetensors" in str(info.value)


def test_truncated_file_is_refused(saved: Path) -> None:
    data = saved.read_bytes()
    for cut in (4, 100, len(data) // 2, len(data) - 1):
        saved.write_bytes(data[:cut])
        with pytest.raises(ModelFileError):
            load_model(saved)


def _meta(model: LoadedModel) -> dict:
    return model.info.to_dict()


def test_newer_format_version_is_refused(tmp_path: Path, model: LoadedModel) -> None:
    meta = _meta(model) | {"version": 99}
    path = _write_with_meta(tmp_path / "v.safetensors", model, {METADATA_KEY: json.dumps(meta)})
    with pytest.raises(ModelFileError, match="newer"):
        load_model(path)


def test_weights_that_do_not_fit_the_architecture(tmp_path: Path, model: LoadedModel) -> None:
    meta = _meta(model)
    meta["arch"]["params"]["width"] = 0.25
    path = _write_with_meta(tmp_path / "w.safetensors", model, {METADATA_KEY: json.dumps(meta)})
    with pytest.raises(ModelFileError, match="shape"):
        load_model(path)
    meta["arch"] = {"name": "segnet_basic", "params": {}}
    path = _write_with_meta(tmp_path / "a.safetensors", model, {METADATA_KEY: json.dumps(meta)})
    with pytest.raises(ModelFileError, match="do not fit"):
        load_model(path)
    meta["arch"] = {"name": "resnet9000", "params": {}}
    path = _write_with_meta(tmp_path / "u.safetensors", model, {METADATA_KEY: json.dumps(meta)})
    with pytest.raises(ModelFileError, match="unknown architecture"):
        load_model(path)


def test_nan_weights_are_refused(tmp_path: Path, model: LoadedModel) -> None:
    first = next(iter(model.network.parameters()))
    with torch.no_grad():
        first[0] = float("nan")
    path = save_model(tmp_path / "nan.safetensors", model)
    with pytest.raises(ModelFileError, match="NaN"):
        load_model(path)


def test_a_pickle_is_never_unpickled(tmp_path: Path, model: LoadedModel) -> None:
    path = tmp_path / "evil.safetensors"
    torch.save(model.network.state_dict(), path)
    with pytest.raises(ModelFileError, match="not a readable model"):
        load_model(path)


def test_save_is_atomic_and_checks_suffix(tmp_path: Path, model: LoadedModel) -> None:
    with pytest.raises(ModelFileError, match=r"\.safetensors"):
        save_model(tmp_path / "m.pt", model)
    with pytest.raises(ModelFileError, match="does not exist"):
        save_model(tmp_path / "nope" / "m.safetensors", model)
    save_model(tmp_path / "m.safetensors", model)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_channels_must_match_the_normalisation(tmp_path: Path) -> None:
    gray = new_model(ArchSpec("segnet_basic", {"width": 0.25, "in_channels": 1}), preset("voc"))
    assert len(gray.info.normalization.mean) == 1
    assert (
        load_model(save_model(tmp_path / "g.safetensors", gray)).info.arch.params["in_channels"]
        == 1
    )
    meta = gray.info.to_dict()
    meta["normalization"] = {"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]}
    path = _write_with_meta(tmp_path / "bad.safetensors", gray, {METADATA_KEY: json.dumps(meta)})
    with pytest.raises(ModelFileError, match="input channel"):
        load_model(path)


def test_half_precision_files_are_smaller_and_load_as_float32(
    tmp_path: Path, model: LoadedModel
) -> None:
    full = save_model(tmp_path / "f.safetensors", model)
    half = save_model(tmp_path / "h.safetensors", model, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_model(half)
    assert all(p.dtype == torch.float32 for p in loaded.network.parameters())
    x = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        torch.testing.assert_close(loaded.network(x), model.network.eval()(x), atol=0.05, rtol=0.05)


def test_metadata_that_lies_is_refused_before_a_real_network_is_built(
    tmp_path: Path, model: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file: width 0.125 weights whose metadata claims width 4.0 built a
    # 2.1 GB network (84 s) before its shapes were compared.
    import segstudio.model.files as files

    state = {k: v.contiguous() for k, v in model.network.state_dict().items()}
    meta = model.info.to_dict()
    meta["arch"]["params"]["width"] = 4.0
    path = tmp_path / "lies.safetensors"
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps(meta)})
    devices: list[str] = []
    real_build = files.build_model

    def spy(*args: object, **kw: object) -> torch.nn.Module:
        devices.append(str(torch.get_default_device()))
        return real_build(*args, **kw)

    monkeypatch.setattr(files, "build_model", spy)
    with pytest.raises(ModelFileError, match="metadata does not describe these weights") as exc:
        load_model(path)
    assert "lies.safetensors" in str(exc.value) and "'width': 4.0" in str(exc.value)
    assert devices == ["meta"]  # shapes only: nothing allocated, nothing initialised
    devices.clear()
    assert load_model(save_model(tmp_path / "ok.safetensors", model)).path is not None
    assert devices == ["meta", "cpu"]


def test_deeply_nested_metadata_is_one_clear_error(tmp_path: Path, model: LoadedModel) -> None:
    state = {k: v.contiguous() for k, v in model.network.state_dict().items()}
    path = tmp_path / "deep.safetensors"
    save_file(state, str(path), metadata={METADATA_KEY: "[" * 50_000 + "]" * 50_000})
    with pytest.raises(ModelFileError, match=r"deep\.safetensors: model metadata is nested too"):
        read_model_info(path)


def test_a_full_disk_while_saving_is_an_os_error_naming_the_file(
    tmp_path: Path, model: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from safetensors import SafetensorError

    def full(*_a: object, **_k: object) -> None:
        raise SafetensorError("Error while serializing: I/O error: No space (os error 28)")

    monkeypatch.setattr("segstudio.model.files.save_file", full)
    out = tmp_path / "m.safetensors"
    with pytest.raises(OSError) as exc:
        save_model(out, model)
    assert exc.value.errno == errno.ENOSPC and exc.value.filename == str(out)
    assert list(tmp_path.iterdir()) == []  # no temp file left behind
