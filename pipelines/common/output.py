"""Output folders that appear whole or not at all."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recon.files import TEMPORARY_MARK, atomic_file, is_disk_full, temporary_name  # noqa: F401  (re-exported)


def check_output_dir(out: str | Path, force: bool) -> Path:
    """Refuse to write into an existing, non-empty folder unless ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"output folder {out} already exists and is not empty; use --force to replace it")
    return out


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def staged_dir(out: str | Path, force: bool):
    """Yield a temporary folder beside ``out``; on success it replaces ``out`` atomically.

    On an error the temporary folder is removed and ``out`` is left as it was, so a
    failed run leaves no partial output behind.
    """
    out = check_output_dir(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would outlive the rename; a folder gets the usual mode
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
