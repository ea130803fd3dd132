"""``/healthz``, ``/readyz`` and ``/metrics``: what a process supervisor, a load balancer and Prometheus ask a node.

Why three: they answer different questions, and mixing them makes a supervisor restart a healthy daemon whose
PBX is down. ``/healthz`` (liveness) answers 200 ``ok`` whenever the event loop does, and asks nothing of the
store or the PBX: restarting the process would not fix either. ``/readyz`` (readiness) answers 200 only while
this node does its job: the store open and keeping up (not over ``[store] max_pending``, the back-pressure that
pauses reading the PBX) and, on a node that follows a PBX, the AMI link up; else 503 with the reasons, short
and fixed (no host, no secret, no exception text: the probe is often unauthenticated). ``/metrics`` is the
Prometheus text exposition of ``ui_bridge/metrics.py``.

Neither probe needs a login (a probe has none). ``/metrics`` shows counts an outsider should not read (how busy
the call centre is), so it is never open to the world: with ``[http] metrics_token`` set, it needs
``Authorization: Bearer <token>`` (from any address); without one, only a direct request from this machine
(a loopback peer, not relayed by a reverse proxy: no ``X-Forwarded-For``/``Forwarded``/``X-Real-IP``) is
served. ``docs/deploy.md`` has the scrape configuration.
"""

from __future__ import annotations

import hmac

from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ui_bridge.settings import HttpSettings

from ..addresses import parse_ip
from ..metrics import Node, NodeMetrics
from .gate import api_error

NO_STORE = {"Cache-Control": "no-store"}
#: Headers a reverse proxy adds: a request carrying one was relayed, so its loopback peer says nothing.
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")
#: The 401 of ``/metrics`` when a token is configured and the request has not got it.
TOKEN_NEEDED = "metrics: send Authorization: Bearer <[http] metrics_token>"
#: The 403 of ``/metrics`` without a configured token, for anything but a direct request from this machine.
LOOPBACK_ONLY = "metrics: only from this machine unless [http] metrics_token is set"


class Ops:
    """The three handlers, over the node they run in (``None``: a panel without a daemon, never ready)."""

    def __init__(self, settings: HttpSettings, node: Node | None, metrics: NodeMetrics) -> None:
        self.settings = settings
        self.node = node
        self.metrics = metrics
        self._token = settings.metrics_token.encode()

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n", headers=NO_STORE)

    def not_ready(self) -> list[str]:
        """Why this node should get no traffic now; empty when it is ready."""
        node = self.node
        if node is None:
            return ["no daemon runs behind this panel"]
        reasons = []
        if node.store is None:
            reasons.append("store: not open")
        elif node.backlogged is not None:
            reasons.append("store: behind its writes, reading the PBX paused until they are committed")
        # Each PBX the node follows now: one another node follows (this one stands by for it), or that a panel-only
        # node never follows, is not this node's job.
        reasons += [f"pbx {pbx}: AMI not connected" for pbx, link in node.links.items()
                    if link.following and not link.connected]
        return reasons

    async def readyz(self, request: Request) -> Response:
        reasons = self.not_ready()
        return JSONResponse({"ready": not reasons, "reasons": reasons}, status_code=503 if reasons else 200,
                            headers=NO_STORE)

    def _refusal(self, request: Request) -> Response | None:
        """The answer for a request not allowed to read the metrics, or None (see the module's docstring)."""
        if self._token:
            sent = request.headers.get("authorization", "")
            scheme, _, credentials = sent.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode("latin-1"),
                                                                     self._token):
                return api_error(401, "unauthorized", TOKEN_NEEDED,
                                 headers={"WWW-Authenticate": 'Bearer realm="metrics"', **NO_STORE})
            return None
        peer = parse_ip(request.client.host) if request.client else None
        relayed = any(name in request.headers for name in PROXY_HEADERS)
        if peer is None or not peer.is_loopback or relayed:
            return api_error(403, "forbidden", LOOPBACK_ONLY, headers=NO_STORE)
        return None

    async def scrape(self, request: Request) -> Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if self.metrics.crm is not None:  # the CRM outbox's gauges, read from the store now (ui_bridge/crm_watch.py)
            await self.metrics.crm.refresh()
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(self.metrics.registry), media_type=content_type, headers=NO_STORE)
