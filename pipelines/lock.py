"""One writer per output folder.

Two ``recon batch`` runs writing one folder would interleave their manifests and
outputs. :class:`FolderLock` takes an exclusive ``flock`` on ``FOLDER/.recon.lock``;
the operating system releases it when the process ends, however it ends, so a killed
run never leaves a stale lock behind. A second run is refused with one line naming the
folder and the holder's process id.
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
        handle = open(path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise FolderLocked(f"output folder {self.folder} is in use by another {self.what} ({holder}); "
                               "wait for it to finish or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self.handle is not None:
            self.handle.truncate(0)
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
