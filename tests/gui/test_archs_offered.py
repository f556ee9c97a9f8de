"""The fine-tune dialog offers every registered architecture, each with valid settings."""

from __future__ import annotations

from segstudio.gui.training_panel import NEW_ARCHS
from segstudio.model.arch import ARCHITECTURES, ArchSpec, resolve_spec


def test_the_window_offers_every_architecture() -> None:
    assert {name for _, name, _ in NEW_ARCHS} == set(ARCHITECTURES)
    for _, name, params in NEW_ARCHS:
        resolve_spec(ArchSpec(name, params))
