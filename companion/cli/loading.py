"""The configuration as a command reads it: a config error is the file, the field and what is wrong (status 2)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from companion.config import ConfigError, Settings, load_config

from .errors import fail
from .options import LogLevel


def settings_from(path: Path) -> Settings:
    """The settings of ``path``, the AMI secret resolved (a missing ``secret_env`` is a config error too)."""
    try:
        settings = load_config(path)
        for pbx in settings.followed():
            pbx.ami.resolved_secret()
    except ConfigError as exc:
        fail(str(exc))
    return settings


def pbx_filter(settings: Settings, given: str | None) -> list[str] | None:
    """The PBXs ``--pbx msk,spb`` names (None: every PBX), each checked against the configuration's ids.

    An id the configuration does not have is refused with the ones it has: a typo must not print an empty
    journal as if that PBX had had no calls.
    """
    if given is None:
        return None
    known = [pbx.id for pbx in settings.followed()]
    wanted = [part.strip() for part in given.split(",") if part.strip()]
    unknown = [pbx for pbx in wanted if pbx not in known]
    if unknown or not wanted:
        fail(f"--pbx: no PBX {', '.join(map(repr, unknown)) or repr(given)} in the configuration "
             f"(its PBXs: {', '.join(known)})")
    return wanted


def config_path(ctx: typer.Context, config: Path | None) -> Path:
    """A subcommand's ``--config``, else the one given to its group (``cti missed --config X close 1``)."""
    path = config or ctx.obj
    if path is None:
        fail("give the config file: --config FILE (or set CTI_CONFIG)")
    return Path(path)


def require_store(settings: Settings) -> None:
    """A listing of a journal the daemon never made says so, instead of creating an empty one."""
    if not settings.store.url and not settings.store.path.exists():  # a PostgreSQL store ([store] url): no file
        fail(f"no journal at {settings.store.path} yet: start the daemon first (cti run --config FILE)", 1)


def setup_logging(level: LogLevel) -> None:
    """Log to stderr, one line per record: control characters in a message (from the PBX, a client, a file)
    are written as escapes, so they can neither forge a line nor act on the terminal (:mod:`companion.logtext`)."""
    from companion.logtext import SafeFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=level.value.upper(), handlers=[handler])
    # httpx logs every request it sends at INFO: a line per CRM request and caller lookup would bury the daemon's own
    # lines. The CRM sender logs what went wrong itself (`cti crm status` says what went right); --log-level debug
    # shows the requests again.
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)
