"""The session layer is safe to import on the window's thread: no torch, no Qt."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_session_layer_loads_neither_torch_nor_qt() -> None:
    code = (
        "import sys\n"
        "import segstudio.session.document, segstudio.session.models, segstudio.session.training\n"
        "import segstudio.core.jobs\n"
        "print(sorted(m for m in ('torch', 'PySide6') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
