"""The ``cti`` Typer application and its command groups; the command modules add their commands to these."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="CTI Companion: call journal and missed-call register beside an Asterisk PBX.")
missed_app = typer.Typer(help="The missed-call register and its call-back workflow.", invoke_without_command=True)
app.add_typer(missed_app, name="missed")
users_app = typer.Typer(help="Users of the web panel and their API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
contacts_app = typer.Typer(help="The client directory: contacts, their phones and cars.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")
store_app = typer.Typer(help="The store's schema, and moving a site's SQLite store to PostgreSQL.",
                        no_args_is_help=True)
app.add_typer(store_app, name="store")
