"""The teacher a distilled model's lineage records, read without trusting its types."""

from __future__ import annotations

from segstudio.io.project.models import Teacher, teacher_of


def test_the_teacher_of_a_distilled_model() -> None:
    prov = {
        "teacher": {
            "arch": {"name": "segnet", "params": {"width": 0.5}},
            "mean_iou": 0.5665,
            "path": "/models/teacher.safetensors",
            "distill_weight": 0.5,
        }
    }
    assert teacher_of(prov) == Teacher("segnet", 0.5, 0.5665, "/models/teacher.safetensors", 0.5)
    assert teacher_of({}) is None
    assert teacher_of({"teacher": None}) is None


def test_a_malformed_teacher_record_gives_empty_fields_not_an_error() -> None:
    odd = {"teacher": {"arch": "segnet", "mean_iou": "high", "path": 3, "distill_weight": None}}
    assert teacher_of(odd) == Teacher(None, None, None, None, None)
    nested = {"teacher": {"arch": {"name": "unet", "params": [0.5]}}}
    assert teacher_of(nested) == Teacher("unet", None, None, None, None)
