"""Output file names that stay inside ``output_path`` and never clobber by accident."""

from __future__ import annotations

import os
import re
import unicodedata
from typing import TYPE_CHECKING

from hypersdk._validation import is_int_between, path_argument, shown
from hypersdk.errors import ConfigurationError, ExportError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["safe_filename", "export_file_path", "DEFAULT_MAX_NAME_BYTES"]

# 255 bytes is the common file-name limit (ext4, XFS, APFS, NTFS in UTF-16 units). The
# default leaves room for a collision counter ("-999") and the ".part" / ".download"
# suffixes the toolkit adds while a file is being written.
DEFAULT_MAX_NAME_BYTES = 200

_FALLBACK = "vm"

# Characters that are separators or have a meaning on some file system we may run on.
_FORBIDDEN = frozenset('/\\:*?"<>|')

# Windows refuses these device names with any extension ("CON.qcow2" too) and, since
# Windows 11, with superscript digits; comparing case-folded stems catches all forms.
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$", "clock$"}
    | {f"{device}{digit}" for device in ("com", "lpt") for digit in "0123456789¹²³"}
)

_SUFFIX = re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$")


def _clean_char(char: str) -> str:
    if char in _FORBIDDEN:
        return "_"
    # Cc: control characters (NUL, newline, ESC...); Cf: invisible format characters
    # such as U+202E RIGHT-TO-LEFT OVERRIDE, which can disguise an extension;
    # Zl/Zp: line and paragraph separators; Cs: lone surrogates cannot be encoded.
    if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp", "Cs"}:
        return "_"
    if char.isspace():
        return " "
    return char


def _cut_to_bytes(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    # "ignore" drops a code point split by the cut instead of leaving invalid UTF-8.
    return encoded[:limit].decode("utf-8", errors="ignore")


def _fit(text: str, limit: int) -> str:
    # Cutting can expose a trailing dot or space, or leave a lone combining mark, so
    # every cut is followed by the same tidying.
    return unicodedata.normalize("NFC", _cut_to_bytes(text, limit)).rstrip(". ")


def _check_suffix(suffix: str) -> str:
    checked: object = suffix
    if not isinstance(checked, str):
        raise ConfigurationError(f"suffix: must be a string, got {type(checked).__name__}")
    suffix = suffix.lstrip(".")
    if suffix and not _SUFFIX.match(suffix):
        raise ConfigurationError(
            "suffix: must be letters, digits, '-' and '_' separated by dots (such as "
            f"'qcow2' or 'qcow2.zst'), got {shown(suffix)}"
        )
    return suffix


def safe_filename(name: str, *, suffix: str = "", max_bytes: int = DEFAULT_MAX_NAME_BYTES) -> str:
    """Turn a VM name or id into one harmless file name component.

    The name is NFC-normalised; path separators, characters Windows forbids, control and
    invisible format characters become ``_``; other whitespace becomes a plain space; leading
    dots and spaces and trailing dots and spaces are dropped (so ``..``, hidden files
    and names Windows would silently change cannot occur); reserved device names such
    as ``CON`` or ``nul.txt`` get a trailing ``_``; the result is cut so that, with
    ``.suffix`` appended, it fits in ``max_bytes`` bytes of UTF-8 without splitting a
    character. An empty result becomes ``"vm"``.

    >>> safe_filename("../../etc/passwd", suffix="qcow2")
    '_.._etc_passwd.qcow2'

    Args:
        name: The untrusted name, usually ``VMInfo.name`` or ``VMInfo.id``.
        suffix: The extension without the leading dot, for example ``"qcow2"`` or
            ``"vmdk.zst"``: letters, digits, ``-`` and ``_`` separated by dots.
        max_bytes: The longest allowed result in UTF-8 bytes, suffix included (32-255).

    Raises:
        ConfigurationError: ``name`` is not a string, or ``suffix`` or ``max_bytes`` is
            not acceptable.
    """
    checked: object = name
    if not isinstance(checked, str):
        raise ConfigurationError(f"name: must be a string, got {type(checked).__name__}")
    if not is_int_between(max_bytes, 32, 255):
        raise ConfigurationError(f"max_bytes: must be an integer in 32-255, got {shown(max_bytes)}")
    suffix = _check_suffix(suffix)
    if len(suffix) > 24:
        raise ConfigurationError(f"suffix: must be at most 24 characters, got {shown(suffix)}")
    text = unicodedata.normalize("NFC", name)
    text = "".join(_clean_char(char) for char in text)
    text = " ".join(text.split(" ")).strip(". ")
    tail = f".{suffix}" if suffix else ""
    limit = max_bytes - len(tail.encode("utf-8"))
    text = _fit(text, limit) or _FALLBACK
    stem, dot, rest = text.partition(".")
    if stem.rstrip(" ").casefold() in _RESERVED:
        # Windows reserves "NUL" whatever follows the first dot, so mark the stem.
        text = _fit(f"{stem}_{dot}{rest}", limit)
    return text + tail


def export_file_path(
    output_path: str | os.PathLike[str],
    name: str,
    *,
    suffix: str,
    overwrite: bool = False,
    max_bytes: int = DEFAULT_MAX_NAME_BYTES,
) -> Path:
    """Return where an export of ``name`` should be written inside ``output_path``.

    The file name is :func:`safe_filename` of ``name``; the directory is created when it
    is missing. Unless ``overwrite`` is true, a name already taken (by a file, a
    directory or a dangling link) gets a counter: ``web-1.qcow2``, ``web-2.qcow2``, ...
    The result is always a direct child of ``output_path``.

    >>> export_file_path(tmp_path, "web/01", suffix="qcow2")  # doctest: +SKIP
    PosixPath('/tmp/.../web_01.qcow2')

    Raises:
        ConfigurationError: ``output_path`` exists but is not a directory, or
            ``suffix``/``max_bytes`` is not acceptable.
        ExportError: the directory cannot be created, or 10,000 names are taken.
    """
    # Every argument is checked before the directory is created: bad input writes nothing.
    filename = safe_filename(name, suffix=suffix, max_bytes=max_bytes)
    directory = path_argument("output_path", output_path)
    try:
        if directory.exists() and not directory.is_dir():
            raise ConfigurationError(
                f"output_path: must be a directory, got the file {shown(str(directory))}"
            )
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # also what exists() raises: a name too long, no permission
        raise ExportError(
            f"cannot create the output directory {shown(str(directory))}: "
            f"{exc.strerror or type(exc).__name__}; "
            "choose a writable output_path"
        ) from None
    candidate = directory / filename
    if overwrite or not os.path.lexists(candidate):
        return _inside(directory, candidate)
    tail = f".{suffix.lstrip('.')}" if suffix else ""
    stem = filename[: len(filename) - len(tail)]
    for counter in range(1, 10_000):
        extra = f"-{counter}"
        shortened = _cut_to_bytes(stem, max_bytes - len((extra + tail).encode("utf-8")))
        candidate = directory / f"{shortened.rstrip('. ') or _FALLBACK}{extra}{tail}"
        if not os.path.lexists(candidate):
            return _inside(directory, candidate)
    raise ExportError(
        f"every name like {filename!r} is taken in {str(directory)!r}; "
        "clean up old exports or pass overwrite=True"
    )


def _inside(directory: Path, candidate: Path) -> Path:
    # safe_filename already guarantees this; the check keeps a future edit honest.
    if candidate.parent != directory or candidate.name in {"", ".", ".."}:
        raise ExportError(f"refusing to write outside {str(directory)!r}")  # pragma: no cover
    return candidate
