"""One writer per output folder.

Two ``recon batch`` runs writing one folder would interleave their manifests and
outputs. :class:`FolderLock` takes an exclusive ``flock`` on ``FOLDER/.recon.lock``;
the operating system releases it when the process ends, however it ends, so a killed
run never leaves a stale lock behind. A second run is refused with one line naming the
folder and the holder's process id. A run that ends normally removes the lock file
(while it still holds the lock); a run that takes a lock checks that its file is still
the one at the path, so a file removed under it is never mistaken for the lock.
"""

from __future__ import annotations

import os
from pathlib import Path


class FolderLocked(RuntimeError):
    """Another process holds the folder's lock."""


class FolderLock:
    """Context manager holding an exclusive lock on ``folder`` for ``what``."""

    NAME = ".recon.lock"

    def __init__(self, folder: str | Path, what: str = "recon"):
        self.folder = Path(folder)
        self.what = what
        self.handle = None

    def __enter__(self) -> FolderLock:
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / self.NAME
        for _ in range(100):  # the file can be removed between open and flock by a finishing run
            handle = open(path, "a+")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise FolderLocked(f"output folder {self.folder} is in use by another {self.what} ({holder}); "
                                   "wait for it to finish or choose another --out") from None
            if _same_file(handle, path):
                break
            handle.close()
        else:
            raise FolderLocked(f"output folder {self.folder}: cannot take its lock {path}")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self.handle, self.path = handle, path
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self.handle is not None:
            try:
                self.path.unlink(missing_ok=True)  # still locked: a waiting run re-checks the path
            except OSError:
                self.handle.truncate(0)
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def _same_file(handle, path: Path) -> bool:
    """Whether the open ``handle`` is still the file at ``path``."""
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
