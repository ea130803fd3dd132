"""The panel's HTTP handlers, one module per job; ``ui_bridge/http.py`` puts them in one route table.

``gate`` is who may call what (the session, the role, the Origin of a write): each API route declares its
policy in the table, and the gate checks it once, before the handler, which gets its ``User`` already looked
up. ``pages`` serves the panel's files, ``login`` the session, ``journal`` the call journal and the missed-call
register, ``directory`` the client directory, ``health`` the daemon's health, ``websocket`` the live socket.
"""
