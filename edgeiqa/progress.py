"""Progress output that suits where it goes: a tqdm bar on a terminal, plain lines in a log.

A tqdm bar redraws itself with carriage returns; written to a file or a pipe (CI, ``nohup``, a Jetson
over ssh) every redraw stays, and one epoch becomes a multi-megabyte line. So when the stream is not
a terminal, :func:`progress_bar` draws nothing while it runs and writes one line when it ends (and,
for long runs, one line per ``every_s`` seconds), and :func:`progress_write` prints a plain line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm import tqdm


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes and captured streams)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed stream
        return False


class LineProgress:
    """tqdm's small API (``update``, ``set_postfix``, iteration, ``close``, ``with``) as log lines.

    ``leave=True`` writes ``desc: n/total unit in S s (R unit/s)`` when it closes; ``leave=False``
    (a per-epoch bar whose caller prints its own epoch line) writes nothing at all.
    """

    def __init__(
        self,
        iterable: Iterable | None,
        total: int | None,
        desc: str,
        unit: str,
        stream: TextIO,
        leave: bool,
        every_s: float | None,
    ) -> None:
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.stream, self.leave, self.every_s = stream, leave, every_s
        self.n = 0
        self.postfix: dict[str, Any] = {}
        self._start = self._last = time.perf_counter()
        self._closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update(1)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if self.leave and self.every_s is not None and now - self._last >= self.every_s:
            self._last = now
            self._emit(now)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = values

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.leave:
                self._emit(time.perf_counter())

    def _emit(self, now: float) -> None:
        seconds = now - self._start
        count = f"{self.n}/{self.total}" if self.total is not None else str(self.n)
        rate = f", {self.n / seconds:.3g} {self.unit}/s" if seconds > 0 and self.n else ""
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {count} {self.unit} in {seconds:.1f} s{rate}{extra}", file=self.stream, flush=True)


def progress_bar(
    total: int | None = None,
    desc: str = "",
    *,
    iterable: Iterable | None = None,
    unit: str = "it",
    enabled: bool = True,
    leave: bool = True,
    stream: TextIO | None = None,
    every_s: float | None = 60.0,
) -> Any:
    """A tqdm bar on a terminal, a :class:`LineProgress` elsewhere, a silent one when not ``enabled``."""
    stream = stream if stream is not None else sys.stderr
    if enabled and is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=stream)
    return LineProgress(iterable, total, desc, unit, stream, leave and enabled, every_s)


def progress_write(message: str, stream: TextIO | None = None) -> None:
    """Print a line without breaking a bar drawn on a terminal (``tqdm.write``), plainly otherwise."""
    stream = stream if stream is not None else sys.stdout
    if is_terminal(stream):
        tqdm.write(message, file=stream)
    else:
        print(message, file=stream, flush=True)
