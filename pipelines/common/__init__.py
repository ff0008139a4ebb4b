"""What every command shares: memory limits, atomic output, progress, console text and the trust estimate as runs use it."""
