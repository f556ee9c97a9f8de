"""The page shown without a project: Open Folder, the recent projects, and where help is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtWidgets import QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

from segstudio.gui.theme import icon
from segstudio.io.project import recent_projects


class WelcomePage(QWidget):
    """Shown without a folder: Open Folder and the recent projects (one click opens one)."""

    def __init__(
        self, open_folder: Callable[[], None], open_path: Callable[[Path], object]
    ) -> None:
        super().__init__()
        self.setObjectName("welcome")
        title = QLabel(
            "<h2>SegStudio</h2><p>Label images pixel by pixel with a model in the loop.<br>"
            "Open a folder of images to start.</p>"
        )
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.button = QPushButton("Open Folder…")
        self.button.setObjectName("welcomeOpenFolder")
        self.button.setIconSize(QSize(22, 22))
        self.button.setMinimumHeight(40)
        self.button.setMinimumWidth(200)
        self.button.clicked.connect(lambda _checked=False: open_folder())
        self.recent = QListWidget()
        self.recent.setObjectName("recentProjects")
        self.recent.setMinimumWidth(420)
        self.recent.setMaximumWidth(640)
        self.recent.setMaximumHeight(240)
        self.recent.setToolTip("Click to open")
        self.recent.itemClicked.connect(lambda item: open_path(Path(item.text())))
        self.recent.itemActivated.connect(lambda item: open_path(Path(item.text())))
        self.recent_title = QLabel("Recent projects")
        hint = QLabel("F1 shows the workflow and every key.")
        hint.setEnabled(False)  # dimmed
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(self.button, alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addSpacing(12)
        layout.addWidget(self.recent_title, alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.recent, stretch=1, alignment=Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(hint, alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(1)
        self._restyle()

    def refresh(self) -> None:
        self.recent.clear()
        for folder in recent_projects():
            self.recent.addItem(str(folder))
        has_recent = self.recent.count() > 0
        self.recent.setVisible(has_recent)
        self.recent_title.setVisible(has_recent)

    def _restyle(self) -> None:
        self.button.setIcon(icon("open", self.palette()))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._restyle()
