"""Progress of long reads and writes, for every command that streams a file.

``Progress(total, unit=...)`` is told how much was done since it was last told
(``progress(n)``): on a terminal a tqdm bar (count, rate, ETA) shows once the work has
taken ``delay`` seconds; without one a line goes to ``stream`` (stderr) every
``interval`` seconds. A command's ``--quiet`` simply makes none. ``unit="B"`` counts
bytes (the battle reader tells bytes read); any other unit counts items (rows written).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

DELAY = 2.0  # seconds of work before a bar shows on a terminal
INTERVAL = 5.0  # seconds between progress lines without a terminal


class Progress:
    def __init__(
        self,
        total: int | None,
        stream: TextIO | None = None,
        *,
        unit: str = "B",
        desc: str = "reading",
        delay: float | None = None,
        interval: float | None = None,
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.done = total or 0, 0
        self.interval = INTERVAL if interval is None else interval
        self.unit, self.desc = unit, desc
        self.start = self.last = time.monotonic()
        self.bar = None
        if is_terminal(self.stream):
            self.bar = tqdm(
                total=total or None,
                unit=unit,
                unit_scale=True,
                unit_divisor=1024 if unit == "B" else 1000,
                desc=desc,
                delay=DELAY if delay is None else delay,
                file=self.stream,
                leave=False,
                dynamic_ncols=True,
            )

    def __call__(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float) -> str:
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        elapsed = now - self.start
        if self.unit == "B":
            amount = f"{self.done / 1e6:,.1f} of {self.total / 1e6:,.1f} MB"
        else:
            of = f" of {self.total:,}" if self.total else ""
            rate = f", {self.done / elapsed:,.0f} {self.unit}/s" if elapsed > 0 else ""
            amount = f"{self.done:,}{of} {self.unit}{rate}"
        return f"{self.desc}: {amount}{share}, {elapsed:.0f} s"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
