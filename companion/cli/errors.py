"""How a command stops on a problem: one line on stderr, an exit status, never a traceback."""

from __future__ import annotations

from typing import NoReturn

import typer

from cti.safe_text import terminal_text


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``cti: message`` (each line as text: it may quote a file or a caller) and exit with ``code``.

    2: the input cannot be used as given (a config, a time, a file); 1: the work itself failed.
    """
    typer.echo("\n".join(terminal_text(line) for line in f"cti: {message}".split("\n")), err=True)
    raise typer.Exit(code)


def leaf(error: BaseException) -> BaseException:
    """The first real error inside nested exception groups (task groups inside task groups)."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
