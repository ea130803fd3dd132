"""A problem found in a script file, as the edge prints it: the file, the line when known, the step, what is wrong."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of a script. An error refuses the script; a warning (``warning``) is printed and the script loads."""

    file: str
    message: str
    step: str | None = None
    line: int | None = None
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        step = f" step {self.step!r}:" if self.step is not None else ""
        kind = " warning:" if self.warning else ""
        return f"{where}:{kind}{step} {self.message}"
