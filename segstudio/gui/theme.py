"""Light and dark themes that follow the system, and the shipped icons recoloured to match.

The icons under ``resources/icons`` are single-colour SVGs drawn with
``currentColor``; :func:`icon` renders each at several pixel sizes (so it stays
crisp at 2x) in the palette's text colour, dimmed when disabled. The theme is
chosen from Qt's colour scheme (Qt 6.5+ ``QStyleHints.colorScheme``);
``SEGSTUDIO_THEME`` set to ``light`` or ``dark`` overrides it (screenshots, a
desktop that does not say).
"""

from __future__ import annotations

import importlib.resources
import logging
import os
from collections.abc import Callable
from functools import cache, lru_cache

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication, QStyleFactory

log = logging.getLogger(__name__)

#: Environment variable that forces a theme: ``light``, ``dark`` or ``system`` (default).
THEME_ENV = "SEGSTUDIO_THEME"
#: Pixel sizes each icon is rendered at: toolbar and menu sizes, at 1x and 2x.
ICON_SIZES = (16, 20, 22, 24, 32, 40, 44, 48, 64)


@cache
def icon_svg(name: str) -> str:
    """The SVG text of the shipped icon ``name`` (``resources/icons/<name>.svg``)."""
    path = importlib.resources.files("segstudio.resources") / "icons" / f"{name}.svg"
    return path.read_text(encoding="utf-8")


def render_svg(svg: str, color: QColor, size: int) -> QPixmap:
    """``svg`` drawn ``size`` pixels square with ``currentColor`` as ``color``."""
    text = svg.replace("currentColor", color.name(QColor.NameFormat.HexRgb))
    renderer = QSvgRenderer(QByteArray(text.encode("utf-8")))
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    if color.alphaF() < 1.0:  # SVG colours carry no alpha: dim the whole drawing
        faded = QPixmap(size, size)
        faded.fill(Qt.GlobalColor.transparent)
        painter = QPainter(faded)
        painter.setOpacity(color.alphaF())
        painter.drawPixmap(0, 0, pix)
        painter.end()
        pix = faded
    return pix


def icon(name: str, palette: QPalette) -> QIcon:
    """The shipped icon ``name`` in ``palette``'s text colour, dimmed when disabled.

    A checked action keeps the text colour (its button's background shows the
    state): the same icon then reads well in a menu and on the tool palette.
    """
    normal = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText)
    return _icon(name, normal.rgba())


@lru_cache(maxsize=256)
def _icon(name: str, normal_rgba: int) -> QIcon:
    svg = icon_svg(name)
    normal = QColor.fromRgba(normal_rgba)
    disabled = QColor(normal)
    disabled.setAlphaF(0.35)
    result = QIcon()
    for size in ICON_SIZES:
        pix = render_svg(svg, normal, size)
        for state in (QIcon.State.Off, QIcon.State.On):
            result.addPixmap(pix, QIcon.Mode.Normal, state)
            result.addPixmap(pix, QIcon.Mode.Active, state)
            result.addPixmap(pix, QIcon.Mode.Selected, state)
        dim = render_svg(svg, disabled, size)
        result.addPixmap(dim, QIcon.Mode.Disabled, QIcon.State.Off)
        result.addPixmap(dim, QIcon.Mode.Disabled, QIcon.State.On)
    return result


def is_dark(palette: QPalette) -> bool:
    """Whether ``palette`` draws light text on a dark window."""
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def system_prefers_dark(app: QGuiApplication) -> bool:
    """The system's colour scheme; ``SEGSTUDIO_THEME`` overrides it."""
    forced = os.environ.get(THEME_ENV, "").strip().lower()
    if forced in ("light", "dark"):
        return forced == "dark"
    scheme = app.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Unknown:  # the platform does not say: its palette does
        return is_dark(app.palette())
    return scheme == Qt.ColorScheme.Dark


def dark_palette() -> QPalette:
    """A Fusion dark palette (contrast as in the usual dark themes of image tools)."""
    p = QPalette()
    window, base, text = QColor(45, 45, 48), QColor(30, 30, 32), QColor(225, 225, 228)
    disabled_text = QColor(130, 130, 135)
    highlight = QColor(42, 130, 218)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: QColor(38, 38, 41),
        QPalette.ColorRole.ToolTipBase: QColor(60, 60, 64),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: disabled_text,
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor(55, 55, 59),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Light: QColor(75, 75, 80),
        QPalette.ColorRole.Midlight: QColor(62, 62, 66),
        QPalette.ColorRole.Mid: QColor(40, 40, 43),
        QPalette.ColorRole.Dark: QColor(25, 25, 27),
        QPalette.ColorRole.Shadow: QColor(0, 0, 0),
        QPalette.ColorRole.Highlight: highlight,
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(90, 160, 240),
        QPalette.ColorRole.LinkVisited: QColor(160, 120, 230),
    }
    for role, color in roles.items():
        p.setColor(role, color)
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled_text)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor(70, 70, 75))
    return p


def apply_theme(app: QApplication, dark: bool) -> None:
    """Fusion, with a dark palette or Fusion's own light one."""
    fusion = QStyleFactory.create("Fusion")
    if fusion is not None:
        app.setStyle(fusion)
    app.setPalette(dark_palette() if dark else app.style().standardPalette())
    log.debug("theme: %s", "dark" if dark else "light")


def follow_system(
    app: QApplication, changed: Callable[[bool], None] | None = None
) -> Callable[..., None]:
    """Apply the system's theme now and again whenever the system switches; returns the
    slot connected to ``colorSchemeChanged`` (disconnect it to stop following). Widgets
    recolour their icons on their PaletteChange event."""

    def update(*_args: object) -> None:
        dark = system_prefers_dark(app)
        apply_theme(app, dark)
        if changed is not None:
            changed(dark)

    update()
    app.styleHints().colorSchemeChanged.connect(update)
    return update
