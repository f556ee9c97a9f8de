"""The one error hierarchy of SegStudio.

Every error a user can cause derives from :class:`SegStudioError`; its message
says what went wrong and, where it helps, what to do. The command line turns
these into one line on stderr and exit code 2; the window into a dialog.
"""

from __future__ import annotations


class SegStudioError(Exception):
    """Base class of all errors a user can act on.

    ``window``: the message in the window's words, where it differs (it names the
    dialog's controls, not the command line's flags); None: the message says it.
    """

    def __init__(self, *args: object, window: str | None = None) -> None:
        super().__init__(*args)
        self.window = window


class LabelSetError(SegStudioError):
    """A label set (classes, colours) is invalid or cannot be read."""


class LabelConversionError(SegStudioError):
    """A label image cannot be converted (unknown colours or indices)."""


class UnknownColorsError(LabelConversionError):
    """A colour label image holds colours that are no class of the label set.

    ``counts`` lists each unknown ``(r, g, b)`` colour with its pixel count,
    most frequent first.
    """

    def __init__(self, message: str, counts: tuple[tuple[tuple[int, int, int], int], ...]) -> None:
        self.counts = counts
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        # Keep ``counts`` when the error crosses a process boundary (pickle).
        return (type(self), (str(self), self.counts))


class UnknownIndicesError(LabelConversionError):
    """A label map holds values that are neither a class id nor unlabeled.

    ``counts`` lists each offending value with its pixel count, most frequent first.
    """

    def __init__(self, message: str, counts: tuple[tuple[int, int], ...]) -> None:
        self.counts = counts
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        # Keep ``counts`` when the error crosses a process boundary (pickle).
        return (type(self), (str(self), self.counts))


class ImageReadError(SegStudioError):
    """An image file cannot be read: missing, empty, corrupt, truncated, too large
    or of a kind SegStudio does not handle. The message names the file."""

    def __init__(self, path: object, fault: str) -> None:
        self.path = str(path)
        self.fault = fault
        super().__init__(f"{self.path}: {fault}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        # Keep (path, fault) when the error crosses a process boundary (pickle);
        # the default would call ``cls(message)`` and fail.
        return (type(self), (self.path, self.fault))


class ImageNotFoundError(ImageReadError):
    """The image file (or folder of images) does not exist, or is not a file."""


class EmptyImageError(ImageReadError):
    """The image file is empty (0 bytes)."""


class CorruptImageError(ImageReadError):
    """The file is not an image SegStudio recognises, or its data is corrupt or truncated."""


class ImageTooLargeError(ImageReadError):
    """The image has more pixels than the allowed limit (a guard against decompression bombs)."""


class UnsupportedImageError(ImageReadError):
    """A readable image of a kind SegStudio does not handle (zero size, more than 4 channels,
    complex values, ...)."""


class LabelReadError(ImageReadError):
    """A label-map file is a readable image but not a single-channel map of class indices
    0..255 (for example colour-coded RGB, or values above 255)."""


class ModelFileError(SegStudioError):
    """A model file is missing, corrupt, truncated, or not a SegStudio model."""


class LabelSetMismatchError(ModelFileError):
    """A model's label set differs from the one the caller expected."""


class ArchitectureError(SegStudioError):
    """An unknown architecture or invalid architecture parameters."""


class ProjectError(SegStudioError):
    """A project folder or its ``.segstudio`` store cannot be opened, read or changed:
    a missing or unwritable folder, a corrupt or newer-version database, an unknown image."""


class DatasetError(SegStudioError):
    """A dataset cannot be exported or imported: the output folder exists, names clash,
    files are missing or unreadable, or masks hold colours or classes the label set lacks.
    The message lists every problem found, not just the first."""


class UsageError(SegStudioError):
    """A bad command-line argument or combination of arguments."""


class TrainingError(SegStudioError):
    """Training cannot start or go on: nothing labelled, a bad recipe, a dataset folder
    whose images and labels do not match, a checkpoint that belongs to another run."""
