"""Helpers around the PBX and the protocol: ``replay-pbx`` (a recorded PBX), ``ami-user`` (the least-privilege
AMI user for manager.conf) and ``schema`` (the WebSocket protocol as JSON Schema)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from cti.safe_text import terminal_text

from .app import app
from .errors import fail
from .loading import settings_from, setup_logging
from .options import ConfigOpt, LogLevel, LogLevelOpt, PortOpt, SpeedOpt, TracesArg
from .traces import check_traces, resolve_traces


@app.command("replay-pbx")
def replay_pbx(
    traces: TracesArg = None,
    host: str = "127.0.0.1",
    port: PortOpt = 5038,
    username: str = "cti",
    secret: str = "cti-secret",
    speed: SpeedOpt = 1.0,
    loop: Annotated[bool, typer.Option(help="replay again and again with fresh call ids")] = False,
    redate: Annotated[bool, typer.Option(
        help="date the calls from now, as they are served (the journal shows today's calls, as in cti demo)")] = False,
    live: Annotated[bool, typer.Option(
        help="answer call control (transfers, pauses, click-to-call) with the events Asterisk sends for it, as "
             "cti demo does; without it such actions are answered Success and change nothing")] = False,
    log_level: LogLevelOpt = LogLevel.info,
) -> None:
    """Serve recorded AMI traces as a real TCP AMI server (a PBX for tests and demos)."""
    from asterisk.replay import run_replay_pbx
    from asterisk.replay.queues_conf import read_queues_conf

    setup_logging(log_level)
    paths = resolve_traces(traces or [])
    check_traces(paths)
    # The queues' static members, as the lab's queues.conf beside the traces lists them (as cti demo reads it): a
    # live pause of a member finds it before any event of the traces named it.
    conf = paths[0].parent / "pbx-conf" / "queues.conf" if paths else None
    members = read_queues_conf(conf) if live and conf is not None and conf.is_file() else []
    try:
        asyncio.run(run_replay_pbx(paths, host=host, port=port, username=username, secret=secret, speed=speed,
                                   loop=loop, redate=redate, live=live, queue_members=members))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}", 1)


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option(help="write the JSON Schema here instead of stdout")] = None,
    docs: Annotated[Path | None, typer.Option(help="also write the Markdown reference (docs/protocol.md)")] = None,
) -> None:
    """The WebSocket protocol as JSON Schema, generated from the message models."""
    import json

    from ui_bridge.messages import json_schema
    from ui_bridge.protocol_doc import render

    text = json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    for path, content in ((out, text), (docs, render() if docs is not None else "")):
        if path is not None:
            try:
                path.write_text(content, encoding="utf-8")
            except OSError as exc:
                fail(f"{path}: cannot write: {exc.strerror}")


@app.command("ami-user")
def ami_user(config: ConfigOpt,
             permit: Annotated[str | None, typer.Option(
                 help="the daemon's address as the PBX sees it (default: 127.0.0.1 when [ami] host is local)")] = None,
             ) -> None:
    """Print the manager.conf section of a least-privilege AMI user for this daemon (no 'system').

    Paste it on the PBX, put the daemon's secret in it, `manager reload`, and set [ami] use_filters = false:
    the event filters are then in manager.conf instead of being sent with the Filter action, which needs
    the 'system' write class (see docs/security.md).
    """
    import ipaddress

    from asterisk.manager_conf import manager_conf_section
    from cti.model import AMI_FILTERS

    settings = settings_from(config)
    if permit is None:
        local = settings.ami.host in ("localhost", "127.0.0.1", "::1")
        permit = "127.0.0.1" if local else None
        if permit is None:
            fail("the PBX is not on this machine: say the daemon's address as the PBX sees it with --permit")
    try:
        address = ipaddress.IPv4Address(permit)
    except ValueError:
        fail(f"--permit: {permit!r} is not an IPv4 address (manager.conf permits by IPv4 address and mask)")
    try:
        section = manager_conf_section(settings.ami.username, settings.ami.events, AMI_FILTERS, permit=str(address))
    except ValueError as exc:
        fail(str(exc))
    for line in section.splitlines():
        typer.echo(terminal_text(line))
