"""``cti users add|email|list|passwd|pbx|remove|token``: the panel's users, their e-mail addresses, API tokens."""

from __future__ import annotations

import re
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from companion.output import Format, emit
from cti.safe_text import terminal_text

from .app import users_app
from .errors import fail
from .loading import pbx_filter, settings_from
from .options import ConfigOpt, FormatOpt
from .storage import with_store

if TYPE_CHECKING:
    from store.repository import Store

USER_COLUMNS = (("name", "Name"), ("role", "Role"), ("extension", "Ext."), ("display_name", "Shown as"),
                ("email", "E-mail"), ("pbxs", "PBXs"), ("created_at", "Created"))


class RoleChoice(StrEnum):
    agent = "agent"
    admin = "admin"
    qa = "qa"
    integration = "integration"
    employee = "employee"


def _checked_email(address: str) -> str:
    """The address as kept (``cti.email_address``: one @, no spaces or line breaks, a real domain), or status 2."""
    from cti.email_address import BadEmail, check_email

    try:
        return check_email(address)
    except BadEmail as exc:
        fail(f"--email: {exc}")


def _new_password(password_stdin: bool) -> str:
    """The new password, from stdin (scripts) or asked twice without echo; too short: status 2."""
    from ui_bridge.auth import MIN_PASSWORD_LENGTH

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        fail(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return password


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[RoleChoice, typer.Option(help="agent: own extension only; admin: everything; qa: journal, "
                                                  "recordings, no call control; integration: another system (a "
                                                  "DMS) with an API token, the integration API only; "
                                                  "employee: a master who sees only their call-back reminders "
                                                  "(needs --extension)")],
    config: ConfigOpt,
    extension: Annotated[str | None, typer.Option(help="the agent's phone extension (required for agents and "
                                                       "employees)")] = None,
    display_name: Annotated[str | None, typer.Option(help="shown in the panel, e.g. 'Анна Смирнова'")] = None,
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin instead of prompting")] = False,
    pbx: Annotated[str | None, typer.Option(help="the PBXs the user belongs to, by id: msk or msk,spb (default: "
                                                 "every PBX; an agent of a site with several PBXs names theirs)")]
    = None,
    email: Annotated[str | None, typer.Option(help="where the user's notifications go (complaints handed to them, "
                                                   "overdue ones for managers); 'cti users email' changes it")]
    = None,
) -> None:
    """Create a panel user (asks for the password; it is stored hashed with scrypt).

    An integration user (a DMS such as 1C:Alfa-Auto) has no password: its API token is printed instead (once)."""
    from store.repository import User, UserExists
    from ui_bridge.auth import hash_password, new_token, token_hash

    settings = settings_from(config)
    pbxs = tuple(pbx_filter(settings, pbx) or ())
    address = _checked_email(email) if email is not None else None
    if not re.fullmatch(r"[\w.@-]{1,64}", name):
        fail("a user name is 1-64 letters, digits or . _ @ -")
    if role is RoleChoice.agent and not extension:
        fail("an agent needs --extension (the phone whose calls they see and control)")
    if role is RoleChoice.employee and not extension:
        fail("an employee needs --extension (the phone their call-back reminders are for)")
    if extension is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", extension):
        fail(f"--extension {extension!r}: an extension is letters, digits, '_', '.' or '-' (it names the phone "
             "in AMI actions)")
    followed = [p for p in settings.followed() if not pbxs or p.id in pbxs]
    if role in (RoleChoice.agent, RoleChoice.employee) and len(followed) > 1:
        fail(f"an {role.value}'s extension is a phone of one PBX: give --pbx (one of "
             f"{', '.join(p.id for p in followed)})")
    home = followed[0]
    if extension is not None and not re.fullmatch(home.agent_pattern, extension):
        typer.echo(terminal_text(f"cti: warning: {extension} does not match the agent_pattern of PBX {home.id} "
                                 f"{home.agent_pattern!r}; the daemon will not see it as an agent's phone"),
                   err=True)
    display = display_name or (home.agents.get(extension) if extension else None)
    integration = role is RoleChoice.integration
    if integration and extension:
        fail("an integration user has no extension (it is another system, not a phone)")
    password_hash = None if integration else hash_password(_new_password(password_stdin))
    token = new_token() if integration else None

    async def work(store: Store) -> None:
        try:
            await store.add_user(User(name=name, role=role.value, extension=extension, display_name=display,
                                      password_hash=password_hash, pbxs=pbxs, email=address))
            if token is not None:
                await store.add_token(name, token_hash(token), "created with the user")
        except UserExists as exc:
            fail(f"{exc} (use 'cti users passwd' to change the password)", 1)

    with_store(settings, work)
    if token is not None:
        typer.echo(token)
    typer.echo(terminal_text(f"user {name} ({role.value}{', extension ' + extension if extension else ''}) created"
                             + (": its API token is above, shown once (send it as 'Authorization: Bearer TOKEN')"
                                if token is not None else "")), err=token is not None)


@users_app.command("pbx")
def users_pbx(
    name: str,
    config: ConfigOpt,
    pbx: Annotated[str, typer.Option(help="the PBXs the user belongs to from now on: msk or msk,spb; all: every "
                                          "PBX")],
) -> None:
    """Move a user to other PBXs (their panel sessions end; their API tokens stay)."""
    from store.repository import UserNotFound

    settings = settings_from(config)
    pbxs = () if pbx == "all" else tuple(pbx_filter(settings, pbx) or ())
    reach = [p.id for p in settings.followed() if not pbxs or p.id in pbxs]

    async def work(store: Store) -> None:
        user = await store.get_user(name)
        if user is None:
            fail(str(UserNotFound(name)), 1)
        if user.role in ("agent", "employee") and len(reach) > 1:
            fail(f"{name} is an {user.role}: their extension is a phone of one PBX; give one of {', '.join(reach)}")
        await store.update_user(name, pbxs=pbxs)

    with_store(settings, work)
    typer.echo(terminal_text(f"{name} now belongs to {', '.join(pbxs) if pbxs else 'every PBX'}"))


@users_app.command("email")
def users_email(
    name: str,
    config: ConfigOpt,
    address: Annotated[str | None, typer.Argument(help="the new address, e.g. anna@example.ru")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="the user gets no e-mail from now on")] = False,
) -> None:
    """Set (or remove) the address a user's notifications go to; their panel sessions stay."""
    from store.repository import UserNotFound

    if (address is None) == (not remove):
        fail("give the new address, or --remove")
    kept = _checked_email(address) if address is not None else ""

    settings = settings_from(config)

    async def work(store: Store) -> None:
        try:
            await store.update_user(name, email=kept)
        except UserNotFound as exc:
            fail(str(exc), 1)

    with_store(settings, work)
    typer.echo(terminal_text(f"{name}: e-mail {kept}" if kept else f"{name}: no e-mail from now on"))


@users_app.command("list")
def users_list(config: ConfigOpt, fmt: FormatOpt = Format.table) -> None:
    """The panel's users (never their passwords)."""
    settings = settings_from(config)

    async def work(store: Store) -> list[dict[str, object]]:
        from cti.records import iso_time

        return [{"name": u.name, "role": u.role, "extension": u.extension, "display_name": u.display_name,
                 "email": u.email, "pbxs": ",".join(u.pbxs) or "*",
                 "created_at": iso_time(u.created_at, settings.pbx.tzinfo())} for u in await store.list_users()]

    emit(with_store(settings, work), fmt, USER_COLUMNS, "Panel users")


@users_app.command("passwd")
def users_passwd(name: str, config: ConfigOpt, password_stdin: Annotated[bool, typer.Option()] = False) -> None:
    """Set a user's password; their panel sessions end at once (their API tokens stay)."""
    from store.repository import UserNotFound
    from ui_bridge.auth import hash_password

    settings = settings_from(config)
    password_hash = hash_password(_new_password(password_stdin))

    async def work(store: Store) -> None:
        try:
            await store.update_user(name, password_hash=password_hash)
        except UserNotFound as exc:
            fail(str(exc), 1)

    with_store(settings, work)
    typer.echo(terminal_text(f"password of {name} changed"))


@users_app.command("remove")
def users_remove(name: str, config: ConfigOpt) -> None:
    """Delete a user with their panel sessions and API tokens; their open panels close within a second."""
    from store.repository import UserNotFound

    settings = settings_from(config)

    async def work(store: Store) -> None:
        try:
            await store.remove_user(name)
        except UserNotFound as exc:
            fail(str(exc), 1)

    with_store(settings, work)
    typer.echo(terminal_text(f"user {name} removed"))


@users_app.command("token")
def users_token(name: str, config: ConfigOpt,
                label: Annotated[str | None, typer.Option(help="what the token is for")] = None) -> None:
    """Create an API token for a thin client (sent as 'Authorization: Bearer TOKEN'). Shown once."""
    from store.repository import UserNotFound
    from ui_bridge.auth import new_token, token_hash

    settings = settings_from(config)
    token = new_token()

    async def work(store: Store) -> None:
        try:
            await store.add_token(name, token_hash(token), label)
        except UserNotFound as exc:
            fail(str(exc), 1)

    with_store(settings, work)
    typer.echo(token)
    typer.echo(terminal_text(f"(an API token of {name}: it is not shown again; only its hash is kept)"), err=True)
