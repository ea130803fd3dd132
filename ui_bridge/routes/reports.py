"""The reports over HTTP: ``GET /api/reports/NAME`` (``registered``, ``contacts``, ``funnel``, ``missed``) as JSON, or
with ``format=csv`` as the CSV ``cti report --format csv`` writes.

Admins and QA read them (the route table, ``ui_bridge/http.py``), each only over the PBXs their user belongs to. The
figures are ``Store.report``'s (``store/reports.py`` folded by ``cti/reports.py``): the same query code as the panel's
page (``ui_bridge/static/reports.js``, which reads this route) and the CLI. Days are the site's (``[pbx] timezone``):
``since``/``until`` as a date (``2026-11-01``, local midnight) or an ISO 8601 time; a time without an offset is the
site's. Hostile input is refused before the store is asked (400): an unknown report, a date that is no date, a period
backwards or over a year, an agent that is not one short printable word, an unknown format or encoding; a PBX that is
not the user's is 403.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import tzinfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cti.reports import REPORTS, ReportQuery, write_report_csv
from store.reason_titles import TITLES
from store.repository import Store, User

from ..api_models import BadRequest, time_param, whole_number
from ..csv_download import csv_response, download_format
from ..notifier import Notifier
from ..pbx_access import PbxRefused, listing_filter
from .gate import api_error

#: The 403 of the reports for agents and integration tokens.
REPORTS_ARE_FOR = "the reports are read by admins and QA"
_AGENT_TEXT = 64


class ReportRoutes:
    def __init__(self, store: Callable[[], Store], notifier: Notifier, followed: Sequence[str]) -> None:
        self.store = store
        self.notifier = notifier
        self.followed = list(followed)

    @property
    def tz(self) -> tzinfo | None:
        return self.notifier.messages.tz

    async def read(self, request: Request, user: User) -> Response:
        name = request.path_params["name"]
        if name not in REPORTS:
            return api_error(404, "not_found", f"no report {name[:40]!r} (known: {', '.join(REPORTS)})")
        try:
            fmt, encoding = download_format(request.query_params)
            query = self._query(request, user)
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        store = self.store()
        report = await TITLES.report(store, await store.report(name, query))  # reasons by their titles
        if fmt == "json":
            return JSONResponse(report.to_json())
        return csv_response(lambda out: write_report_csv(report, out), f"report-{name}.csv", encoding)

    def _query(self, request: Request, user: User) -> ReportQuery:
        q = request.query_params
        since = time_param(q, "since", self.tz)
        if since is None:
            raise BadRequest("since: required (a date, 2026-11-01, or an ISO 8601 time)")
        until = time_param(q, "until", self.tz) or time.time()
        agent = q.get("agent") or None
        if agent is not None and (len(agent) > _AGENT_TEXT or not agent.isprintable()):
            raise BadRequest(f"agent: at most {_AGENT_TEXT} printable characters")
        pbxs = listing_filter(user, self.followed, q.get("pbx"))
        unregistered = whole_number(q, "unregistered", 100, 0, 1000)
        try:
            return ReportQuery(since, until, tz=self.tz, pbxs=tuple(pbxs) if pbxs is not None else None, agent=agent,
                               unregistered=unregistered)
        except ValueError as exc:
            raise BadRequest(f"since/until: {exc}") from None
