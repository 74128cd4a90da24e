"""Child processes in the foreground: started in order, watched, and all stopped (in reverse
order) on SIGINT, SIGTERM or SIGHUP, or as soon as one of them dies.

No child is left running on any exit path this process survives.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TextIO

from loadtest.stack.procs import Proc

__all__ = ["StackStopped", "Starter", "run_foreground"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
Starter = Callable[[list[Proc], TextIO], None]  # appends each process as soon as it runs


class StackStopped(Exception):
    """A stop signal arrived."""


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    for sig in _STOP_SIGNALS:  # a second Ctrl-C must not interrupt the clean stop
        signal.signal(sig, signal.SIG_IGN)
    raise StackStopped(signal.Signals(signum).name)


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """Turn the stop signals into StackStopped for the duration; restore the handlers after."""
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_all(procs: list[Proc], out: TextIO) -> None:
    """Stop the processes in reverse start order, ignoring further signals."""
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    for proc in reversed(procs):
        code = proc.stop()
        print(f"stopped {proc.name} (pid {proc.pid}, exit {code})", file=out, flush=True)


def _watch(procs: list[Proc], out: TextIO) -> int:
    """Wait; return 1 as soon as any process exits on its own."""
    while True:
        for proc in procs:
            if proc.popen.poll() is not None:
                print(
                    f"{proc.name} (pid {proc.pid}) exited with {proc.popen.returncode}",
                    file=out,
                    flush=True,
                )
                return 1
        time.sleep(0.5)


def run_foreground(start: Starter, out: TextIO = sys.stdout) -> int:
    """Start the processes with ``start``, then run until a stop signal (exit 0) or until one
    of them dies (exit 1); every process started is stopped before this returns."""
    procs: list[Proc] = []
    code = 0
    with _stop_signals():
        try:
            start(procs, out)
            code = _watch(procs, out)
        except StackStopped as exc:
            print(f"\n{exc}: stopping ...", file=out, flush=True)
        except KeyboardInterrupt:
            print("\nstopping ...", file=out, flush=True)
        except Exception as exc:
            print(f"the stack failed: {exc}", file=out, flush=True)
            code = 1
        finally:
            _stop_all(procs, out)
    return code
