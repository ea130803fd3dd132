"""Logging in and out, and "who am I": ``POST /api/login``, ``POST /api/logout``, ``GET /api/me``.

A login sets an HttpOnly, SameSite=Strict session cookie kept (as a hash) in the store; thin clients that are
not browsers use ``Authorization: Bearer <token>`` instead (``cti users token``) and never log in here.
Password guessing is throttled per name and address before the scrypt check (``ui_bridge/auth.py``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from store.repository import Store, User

from ..api_models import BadRequest, LoginBody, read_model
from ..auth import LoginThrottle, Throttled, dummy_hash, verify_password
from ..hub import Hub
from ..outgoing import user_info
from ..sessions import Sessions
from .gate import COOKIE, Gate, api_error

log = logging.getLogger(__name__)


class Login:
    def __init__(self, gate: Gate, sessions: Sessions, limiter: LoginThrottle, hub: Hub,
                 store: Callable[[], Store], tls: bool) -> None:
        self.gate = gate
        self.sessions = sessions
        self.limiter = limiter
        self.hub = hub
        self.store = store
        self.tls = tls

    async def login(self, request: Request) -> Response:
        try:
            body = await read_model(request, LoginBody, hint='send JSON {"name": "...", "password": "..."}: ')
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        name, password = body.name, body.password
        address = self.gate.client_address(request)
        try:
            # Counted and reserved here, before the first await: parallel guesses cannot outrun the count.
            attempt = self.limiter.begin(name, address)
        except Throttled as exc:
            wait = max(1, math.ceil(exc.retry_after))
            log.debug("panel: login for %r from %s throttled for %d s", name, address, wait)
            return api_error(429, "rate_limited", f"too many failed logins; try again in {wait} s",
                             {"Retry-After": str(wait)})
        with attempt:  # given back if the check fails for another reason (store error, cancelled)
            user = await self.store().get_user(name)
            stored = user.password_hash if user is not None else dummy_hash()
            ok = await asyncio.to_thread(verify_password, password, stored)
            if user is None or not ok:
                attempt.failed()
                log.warning("panel: failed login for %r from %s", name, address)
                return api_error(401, "bad_credentials", "wrong name or password")
            attempt.succeeded()
        if user.role == "integration":  # another system: it sends its API token, it has no panel to log in to
            return api_error(403, "forbidden", "an integration user authenticates with its API token "
                                               "(Authorization: Bearer), not with a login")
        token = await self.sessions.start(user, address)
        log.info("panel: %s (%s) logged in from %s", user.name, user.role, address)
        response = JSONResponse({"user": user_info(user).model_dump()})
        response.set_cookie(COOKIE, token, max_age=int(self.sessions.lifetime), httponly=True,
                            samesite="strict", secure=self.tls, path="/")
        return response

    async def logout(self, request: Request) -> Response:
        """Ends this cookie's session in the store and closes its sockets; 204 with or without one."""
        ended = await self.sessions.end(request.cookies.get(COOKIE))
        if ended is not None:
            self.hub.drop_credential(ended)
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def me(self, request: Request, user: User) -> Response:
        return JSONResponse({"user": user_info(user).model_dump()})
