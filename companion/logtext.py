"""The daemon's log lines, with what came from outside written as visible escapes.

Log messages quote strings the daemon did not choose: the PBX's banner, request paths (percent-decoded, so
``%0A`` is a real newline), names and numbers. Written raw, a newline in one forges a log line of the sender's
choosing (``...\\n2026-01-01 00:00:00,000 ERROR ...``), and an ESC acts on the terminal that shows the log
(colours, the window title, an OSC 8 hyperlink). :class:`SafeFormatter` writes every control character of the
message as :func:`cti.safe_text.terminal_text` does (``\\x0a``, ``\\x1b``), so one record is one line and what
was sent can still be read.

Only the message is escaped this way. A traceback is many lines by design: its line breaks are kept and every
other control character in it is escaped (an exception's text may quote outside strings too).
"""

from __future__ import annotations

import logging

from cti.safe_text import terminal_text


def _lines_kept(text: str) -> str:
    return "\n".join(terminal_text(line) for line in text.split("\n"))


class SafeFormatter(logging.Formatter):
    """A :class:`logging.Formatter` whose records cannot break a line or reach the terminal raw."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        # ``format`` has just set ``record.message`` from ``getMessage()``; each handler's formatter sets it again.
        record.message = terminal_text(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        return _lines_kept(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _lines_kept(super().formatStack(stack_info))
