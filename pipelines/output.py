"""Output folders that appear whole or not at all."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def check_output_dir(out: str | Path, force: bool) -> Path:
    """Refuse to write into an existing, non-empty folder unless ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"output folder {out} already exists and is not empty; use --force to replace it")
    return out


@contextmanager
def staged_dir(out: str | Path, force: bool):
    """Yield a temporary folder beside ``out``; on success it replaces ``out`` atomically.

    On an error the temporary folder is removed and ``out`` is left as it was, so a
    failed run leaves no partial output behind.
    """
    out = check_output_dir(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    backup = None
    if out.exists():
        backup = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(backup)
    staging.rename(out)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


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


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files and folders that interrupted writers left under
    ``folder``; returns what was removed."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in sorted(folder.rglob(f".*{TEMPORARY_MARK}*"), key=lambda p: -len(p.parts)):
        if not path.exists():
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (temporary file + rename)."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=True) + "\n")
