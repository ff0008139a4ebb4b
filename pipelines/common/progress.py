"""Progress for long work: a tqdm bar on a terminal, plain lines elsewhere.

Under ``nohup``, CI or a pipe a bar is useless and silent, so when stderr is not a
terminal a line such as ``recon batch: 3/10 files (30 %), 24 slices, 0:00:12 elapsed,
ETA 0:00:28`` is printed every few seconds (``interval``), and once at the end.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import TextIO

DEFAULT_INTERVAL = 5.0


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=int(max(seconds, 0))))


class Progress:
    """Count finished items of a known total.

    Parameters
    ----------
    total : int
        Items to do.
    desc : str
        What is counted, e.g. ``recon batch``.
    unit : str
        Plural name of an item (``files``, ``slices``).
    mode : bool, str or None
        None chooses: a bar on a terminal, lines otherwise. True forces the bar,
        ``"lines"`` forces lines, False shows nothing.
    interval : float
        Seconds between lines in line mode.
    stream : file
        Where to write (stderr by default).
    """

    def __init__(self, total: int, desc: str, unit: str, mode: bool | str | None = None,
                 interval: float = DEFAULT_INTERVAL, stream: TextIO | None = None):
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.stream = stream or sys.stderr
        if mode is None:
            mode = True if _isatty(self.stream) else "lines"
        self.mode = mode
        self.done = 0
        self.printed = -1  # the count the last line showed: close() never repeats it
        self.extra = ""
        self.started = self.last = time.monotonic()
        self.bar = None
        if mode is True:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit.rstrip("s") or unit, file=self.stream)

    def begin(self, label: str) -> None:
        """Work on ``label`` starts: shown beside the count at once (the first line, in
        line mode, is printed now rather than after the first item ends)."""
        self.extra = f"now {label}"
        if self.bar is not None:
            self.bar.set_postfix_str(self.extra)
        elif self.mode == "lines" and (self.printed < 0 or time.monotonic() - self.last >= self.interval):
            self._line()

    def write(self, text: str, fallback=None) -> None:
        """Print ``text`` on its own line, above the bar when there is one (never glued
        to it); else through ``fallback`` (default: the stream)."""
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        elif fallback is not None:
            fallback(text)
        else:
            print(text, file=self.stream, flush=True)

    def update(self, count: int = 1, extra: str = "") -> None:
        """``count`` more items are done; ``extra`` is shown beside the count."""
        self.done += count
        self.extra = extra or self.extra
        if self.bar is not None:
            self.bar.update(count)
            if extra:
                self.bar.set_postfix_str(extra)
        elif self.mode == "lines" and time.monotonic() - self.last >= self.interval:
            self._line()

    def _line(self) -> None:
        self.printed = self.done
        self.last = now = time.monotonic()
        elapsed = now - self.started
        percent = 100.0 * self.done / self.total if self.total else 100.0
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        eta_text = _clock(eta) if eta == eta else "unknown"
        extra = f", {self.extra}" if self.extra else ""
        print(f"{self.desc}: {self.done}/{self.total} {self.unit} ({percent:.0f} %){extra}, "
              f"{_clock(elapsed)} elapsed, ETA {eta_text}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.mode == "lines" and self.total and self.printed != self.done:
            self._line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
