"""Stopping a batch cleanly: SIGTERM and SIGINT raise in the main process, and the
worker processes are ended at once (they ignore SIGINT, which the main process
handles for the whole group)."""

from __future__ import annotations

import signal
from concurrent.futures import ProcessPoolExecutor
from typing import Any


class Signalled(BaseException):
    """Raised in the main process by the SIGTERM / SIGINT handler."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

def worker_init() -> None:
    """Workers leave SIGINT to the main process, which stops them (a Ctrl-C reaches the
    whole process group); SIGTERM keeps its default and ends a worker at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now (they may be mid-unit)."""
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)


_pending: list[int] = []  # signals received; kept in case the raise is swallowed


def _raise_signal(signum: int, frame: Any) -> None:
    _pending.append(signum)
    raise Signalled(signum)


def raise_pending() -> None:
    """Raise :class:`Signalled` for a signal that arrived but whose raise was swallowed
    (a handler that runs inside an at-fork callback, e.g. while a worker pool starts,
    has its exception ignored by Python); call between units of work."""
    if _pending:
        raise Signalled(_pending[0])


def install_signal_handlers() -> dict[int, Any]:
    """SIGTERM (and SIGINT) raise :class:`Signalled` in the main thread; elsewhere (a
    thread) nothing is installed."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    _pending.clear()
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, _raise_signal)
    return previous


def restore_signal_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
