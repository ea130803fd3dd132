"""Options and arguments several commands share, with their limits (a bad value is refused by the parser)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from companion.output import Format

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="TOML config file (see config.example.toml)",
                                         envvar="CTI_CONFIG")]
SubConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file", envvar="CTI_CONFIG")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, json or csv")]
SinceOpt = Annotated[str | None, typer.Option(help="from this time: 2026-11-24, '2026-11-24 09:00', 2h, 7d, today")]
UntilOpt = Annotated[str | None, typer.Option(help="up to this time (same forms as --since)")]
PbxOpt = Annotated[str | None, typer.Option(help="only these PBXs, by id: msk or msk,spb (default: every PBX)")]
#: The largest row id SQLite has; a larger number would fail inside the store instead of being refused.
MAX_ID = 2**63 - 1
IdArg = Annotated[int, typer.Argument(metavar="ID", min=1, max=MAX_ID)]
PortOpt = Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port)")]
SpeedOpt = Annotated[float, typer.Option(min=0, help="1 = recorded pace, 10 = ten times faster, 0 = at once")]
TracesArg = Annotated[list[str] | None, typer.Argument(help="trace folders or name prefixes (default: all)")]


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


LogLevelOpt = Annotated[LogLevel, typer.Option(case_sensitive=False, help="debug, info, warning or error")]
