"""Files that hold alert contents (the outbox, jsonl logs): private unless configured.

New files are created ``0600`` and new directories ``0700`` by default, or with the mode
an option names (``file_mode = "0640"``), exactly: the process's umask does not narrow a
mode the operator chose. Files and directories that already exist keep their mode.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

FILE_MODE = "0600"
DIR_MODE = "0700"
_OCTAL = re.compile(r"0?[0-7]{3}")


def parse_mode(text: str) -> int | None:
    """The permission bits an octal string such as ``"0640"`` names; ``None`` if it names
    none (not three octal digits, optionally after a ``0``)."""
    return int(text, 8) if isinstance(text, str) and _OCTAL.fullmatch(text) else None


def mode_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a mode option, or ``None``."""
    if isinstance(value, str) and parse_mode(value) is not None:
        return None
    return f'expected permission bits as an octal string such as "0640", got {value!r}'


def make_dirs(path: str | os.PathLike[str], mode: int) -> None:
    """Create directory ``path`` and its missing parents, each with ``mode``.

    :raises OSError: one could not be created.
    """
    missing = []
    here = Path(os.path.abspath(path))
    while not here.is_dir() and here.parent != here:
        missing.append(here)
        here = here.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            if directory.is_dir():  # made by someone else meanwhile: theirs to keep
                continue
            raise
        os.chmod(directory, mode)  # mkdir's mode is narrowed by the umask


def _set_mode(fd: int, mode: int) -> None:
    if hasattr(os, "fchmod"):  # not on Windows before Python 3.13, where modes mean little
        os.fchmod(fd, mode)


def create(path: str | os.PathLike[str], mode: int) -> bool:
    """Create an empty file at ``path`` with ``mode`` unless something is there already;
    whether it was created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, mode)
    except FileExistsError:
        return False
    try:
        _set_mode(fd, mode)
    finally:
        os.close(fd)
    return True


def open_append(path: str | os.PathLike[str], mode: int, *, follow_symlinks: bool) -> int:
    """A file descriptor appending to ``path``, creating the file with ``mode``.

    :param follow_symlinks: when false, a symbolic link at ``path`` is refused
        (``OSError`` with ``errno.ELOOP``) instead of appended through.
    """
    flags = os.O_WRONLY | os.O_APPEND | _CLOEXEC
    if not follow_symlinks:
        flags |= _NOFOLLOW
        if not _NOFOLLOW and os.path.islink(path):  # a platform without O_NOFOLLOW
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.fspath(path))
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:  # also a symbolic link, which O_EXCL never follows
        return os.open(path, flags | os.O_CREAT, mode)
    try:
        _set_mode(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
