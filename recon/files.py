"""Files that appear whole or not at all: every writer of the project writes to a
temporary name beside the target and renames it (``os.replace`` is atomic on one file
system), so an interruption or a full disk never leaves a half-written output.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

TEMPORARY_MARK = ".tmp"
"""Temporary files and folders are named ``.NAME.tmp...``: hidden, and recognisable by
:func:`remove_temporaries` after an interruption."""


def temporary_name(path: Path) -> Path:
    """``.NAME.tmp-PID.SUFFIXES`` beside ``path`` (the suffixes kept, since writers such
    as nibabel choose the format by them)."""
    return path.with_name(f".{path.name}{TEMPORARY_MARK}-{os.getpid()}{''.join(path.suffixes)}")


@contextmanager
def atomic_file(path: str | Path):
    """Yield a temporary path beside ``path``; when the block succeeds it is renamed to
    ``path``. On any error (a full disk, an interruption) the temporary file is removed
    and ``path`` is left as it was."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as error:  # name the file the user asked for, not the temporary one
        code = errno.ENOSPC if is_disk_full(error, path.parent) else error.errno
        reason = "No space left on device" if code == errno.ENOSPC else error.strerror or str(error)
        raise OSError(code, reason, str(path)) from error
    finally:
        if tmp.exists():
            tmp.unlink()


def is_disk_full(error: OSError, folder: Path) -> bool:
    """True when ``error`` means the disk (or quota) is full. Some writers do not set
    ``errno`` (numpy's ``tofile`` reports a short write as ``"N requested and M
    written"``), so a short write, or an error while the folder's file system has
    less than 1 MiB free, counts as full too."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if error.errno is not None:
        return False
    if re.search(r"requested and \d+ written", str(error)):
        return True
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False
