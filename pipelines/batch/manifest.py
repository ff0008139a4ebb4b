"""The batch's record of finished work: ``manifest.json``, keyed by each input's
content hash and the run's settings, so ``--resume`` skips what is done."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def content_hash(unit: Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's file names and bytes."""
    digest = hashlib.sha256()
    files = [unit] if unit.is_file() else sorted(p for p in unit.rglob("*") if p.is_file())
    for path in files:
        digest.update(str(path.relative_to(unit) if unit.is_dir() else path.name).encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def unit_key(unit: Path, key_fields: dict[str, Any]) -> str:
    """The manifest key of ``unit`` under a run whose output depends on ``key_fields``."""
    fields = json.dumps(key_fields, sort_keys=True)
    return hashlib.sha256(f"{content_hash(unit)}|{fields}".encode()).hexdigest()[:32]


def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise PermissionError(f"cannot write to output folder {out}: {error.strerror or error}") from error


def load_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    if not path.is_file():
        return {"units": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: corrupt manifest ({error}); remove it or use --force") from error
