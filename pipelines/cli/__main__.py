"""``python -m pipelines.cli``: the ``recon`` command (torchrun starts it this way)."""

from pipelines.cli.main import entry

entry()
