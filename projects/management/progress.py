"""A text progress bar for management commands (one line, redrawn in place on a terminal)."""

import sys
import time


class ProgressBar:
    def __init__(self, label, *, stream=None, width=30, min_interval=0.2):
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.min_interval = min_interval
        self._last = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, done, total):
        now = time.monotonic()
        if done < total and now - self._last < self.min_interval:
            return
        self._last = now
        fraction = done / total if total else 1.0
        filled = int(self.width * fraction)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"{self.label} [{bar}] {done}/{total} ({fraction:.0%})"
        if self._tty:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
