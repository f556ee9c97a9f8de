"""The pixel limit: how large an image SegStudio agrees to decode on this machine.

A decoded image is never alone in memory: the window holds its RGB array, the
file's own values, a label map, a prediction, its overlay and display copies;
``predict`` holds the image, the class and confidence maps and the network's
working set. :data:`BYTES_PER_PIXEL` is a generous estimate of all that, and
the default limit is the number of such pixels that fit in
:data:`MEMORY_FRACTION` of the memory available when the image is opened,
never more than :data:`PIXEL_CEILING` (OpenCV's own image limit) and never less
than :data:`PIXEL_FLOOR` (so an ordinary photo opens on a busy machine).

The environment variable :data:`MAX_PIXELS_ENV` (``SEGSTUDIO_MAX_PIXELS``)
replaces the default: a pixel count (``2000000000``, ``2_000_000_000``) or a
size (``50000x50000``). Every decoder compares the pixel count read from the
file's header with the limit before it decodes anything.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

from segstudio.core.errors import UsageError

__all__ = [
    "BYTES_PER_PIXEL",
    "DEFAULT_WITHOUT_MEMORY_INFO",
    "MAX_PIXELS_ENV",
    "MEMORY_FRACTION",
    "PIXEL_CEILING",
    "PIXEL_FLOOR",
    "available_memory",
    "limit_source",
    "pixel_limit",
    "raise_hint",
    "too_large",
]

_log = logging.getLogger(__name__)

MAX_PIXELS_ENV = "SEGSTUDIO_MAX_PIXELS"
"""Environment variable that sets the pixel limit (a count, or ``WIDTHxHEIGHT``)."""

BYTES_PER_PIXEL = 20
"""Estimated memory an open image costs per pixel, all copies and maps together."""

MEMORY_FRACTION = 0.5
"""The share of the available memory one image may take."""

PIXEL_CEILING = 1 << 30
"""Default limit at most (about 32768 x 32768; OpenCV's own image limit)."""

PIXEL_FLOOR = 4096 * 4096
"""Default limit at least, whatever the memory reading says."""

DEFAULT_WITHOUT_MEMORY_INFO = 256 * 1024 * 1024
"""Default limit where the available memory cannot be read (about 16384 x 16384)."""

_SIZE = re.compile(r"^\s*(\d[\d_]*)\s*[xX*]\s*(\d[\d_]*)\s*$")


def pixel_limit() -> int:
    """The largest width x height an image may have now.

    :data:`MAX_PIXELS_ENV` when set, else derived from the available memory
    (see the module's description).

    Raises
    ------
    UsageError
        :data:`MAX_PIXELS_ENV` is set to something that is not a positive pixel
        count or ``WIDTHxHEIGHT``.
    """
    override = _env_limit()
    if override is not None:
        return override
    available = available_memory()
    if available is None:
        return DEFAULT_WITHOUT_MEMORY_INFO
    by_memory = int(available * MEMORY_FRACTION) // BYTES_PER_PIXEL
    return max(PIXEL_FLOOR, min(PIXEL_CEILING, by_memory))


def too_large(width: int, height: int, limit: int, *, given: bool = False, aside: str = "") -> str:
    """The fault of an image over the limit: its size, the limit, where the limit comes
    from, ``aside`` and (unless the caller ``given`` the limit) how to raise it."""
    size = f"{width} x {height} = {width * height:,} pixels, more than the limit of {limit:,}"
    parts = [f"{size} given by the caller" if given else f"{size} ({limit_source(limit)})"]
    if aside:
        parts.append(aside)
    if not given:
        parts.append(raise_hint(width, height))
    return "; ".join(parts)


def limit_source(limit: int) -> str:
    """Where the default limit ``limit`` comes from, for messages."""
    if _env_limit_text() is not None:
        return f"set by {MAX_PIXELS_ENV}"
    available = available_memory()
    if available is None:
        return "the default where the free memory cannot be read"
    if limit == PIXEL_CEILING:
        return "the default ceiling"
    if limit == PIXEL_FLOOR:
        return f"the smallest default; only {available / 1e9:.1f} GB of memory is available now"
    return f"for the {available / 1e9:.1f} GB of memory available now"


def raise_hint(width: int, height: int) -> str:
    """How to let an image of this size through."""
    return (
        "if you trust this file and the machine has the memory, raise the limit with the "
        f"environment variable {MAX_PIXELS_ENV}={width}x{height}"
    )


def available_memory() -> int | None:
    """Bytes of memory this process could still take, or None when the system does not say.

    Linux: ``MemAvailable`` of ``/proc/meminfo``, lowered to what a cgroup (v2 or v1)
    memory limit leaves; other POSIX systems: ``sysconf`` available pages, else half
    the physical pages; Windows: ``GlobalMemoryStatusEx``.
    """
    readers = []
    if sys.platform.startswith("linux"):
        readers.append(_linux_available)
    elif sys.platform == "win32":
        readers.append(_windows_available)
    readers.append(_sysconf_available)
    for reader in readers:
        try:
            found = reader()
        except (OSError, ValueError, AttributeError) as exc:  # an odd system: try the next
            _log.debug("cannot read the available memory (%s): %s", reader.__name__, exc)
            continue
        if found is not None:
            return found
    return None


# --------------------------------------------------------------------------- environment


def _env_limit_text() -> str | None:
    text = os.environ.get(MAX_PIXELS_ENV)
    return text if text is not None and text.strip() else None


def _env_limit() -> int | None:
    text = _env_limit_text()
    if text is None:
        return None
    size = _SIZE.match(text)
    try:
        if size:
            value = int(size.group(1).replace("_", "")) * int(size.group(2).replace("_", ""))
        else:
            value = int(text.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise UsageError(
            f"{MAX_PIXELS_ENV}={text!r} is not a pixel limit; give a positive pixel count "
            "(e.g. 2000000000) or a size (e.g. 50000x50000)"
        )
    return value


# --------------------------------------------------------------------------- memory readers


def _linux_available() -> int | None:
    """``MemAvailable``, lowered to what a cgroup memory limit leaves."""
    found = _meminfo_available()
    try:
        cgroup = _cgroup_headroom()
    except (OSError, ValueError) as exc:
        _log.debug("cannot read the cgroup memory limit: %s", exc)
        cgroup = None
    if cgroup is not None:
        found = cgroup if found is None else min(found, cgroup)
    return found


def _meminfo_available() -> int | None:
    with open("/proc/meminfo", encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                parts = line.split()
                return int(parts[1]) * 1024 if len(parts) >= 2 else None
    return None


def _cgroup_headroom() -> int | None:
    """What the cgroup memory limit still leaves, or None without a limit."""
    v2 = Path("/sys/fs/cgroup/memory.max")
    v1 = Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    if v2.is_file():
        limit_text = v2.read_text().strip()
        used_file = Path("/sys/fs/cgroup/memory.current")
    elif v1.is_file():
        limit_text = v1.read_text().strip()
        used_file = Path("/sys/fs/cgroup/memory/memory.usage_in_bytes")
    else:
        return None
    if not limit_text.isdigit():  # "max": no limit
        return None
    limit = int(limit_text)
    if limit >= 1 << 60:  # cgroup v1 says "no limit" with a huge number
        return None
    used = int(used_file.read_text().strip()) if used_file.is_file() else 0
    return max(0, limit - used)


def _sysconf_available() -> int | None:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None
    for name, share in (("SC_AVPHYS_PAGES", 1.0), ("SC_PHYS_PAGES", 0.5)):
        try:
            pages = os.sysconf(name)
        except (ValueError, OSError):
            continue
        if pages > 0 and page > 0:
            return int(pages * page * share)
    return None


def _windows_available() -> int | None:
    import ctypes

    class _MemoryStatusEx(ctypes.Structure):
        _fields_ = [
            ("dwLength", ctypes.c_ulong),
            ("dwMemoryLoad", ctypes.c_ulong),
            ("ullTotalPhys", ctypes.c_ulonglong),
            ("ullAvailPhys", ctypes.c_ulonglong),
            ("ullTotalPageFile", ctypes.c_ulonglong),
            ("ullAvailPageFile", ctypes.c_ulonglong),
            ("ullTotalVirtual", ctypes.c_ulonglong),
            ("ullAvailVirtual", ctypes.c_ulonglong),
            ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
        ]

    status = _MemoryStatusEx()
    status.dwLength = ctypes.sizeof(_MemoryStatusEx)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
        return None
    return int(status.ullAvailPhys)
