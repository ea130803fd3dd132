"""``[crm]``: the CRMs calls are pushed into (issue 16, ``docs/crm.md``), one sub-section per CRM.

Why in ``ui_bridge``: the daemon's sender (``companion/crm/``) sends, the panel's routes take the CRMs' own calls
(Bitrix24's install handler and click-to-call event, 1C's pull feed) and sign the recording links they hand out,
and ``cti crm`` reports; ``ui_bridge`` is the lowest package all of them may import. ``companion/config.py`` puts
the section into ``Settings``.

A CRM is pushed to when its sub-section is present (``[crm.bitrix24]``...). What every CRM shares is here: how long
a request is retried before it is given up, the back-off, the address the CRMs reach this daemon at (recording
links, Bitrix24's handlers) and how long a recording link lasts. A secret is given in the file or, better, by the
name of an environment variable holding it (``*_env``), read at start (:meth:`CrmSettings.problems`).
"""

from __future__ import annotations

import os
import re
from typing import Annotated

from pydantic import AfterValidator, Field, HttpUrl, model_validator

from asterisk.settings import Section

Seconds = Annotated[float, Field(gt=0, le=24 * 3600)]
#: A CRM user's id as the CRM names it (Bitrix24 and amoCRM: a number; Zammad, 1C: a login).
CrmUserId = Annotated[str | int, Field(union_mode="left_to_right")]
_EXTENSION = re.compile(r"[0-9A-Za-z*#+_-]{1,32}")


def _extensions(value: dict[str, CrmUserId]) -> dict[str, CrmUserId]:
    bad = [k for k in value if not _EXTENSION.fullmatch(k)]
    if bad:
        raise ValueError(f"not an extension: {bad[0]!r}")
    return value


#: ``{"101" = 17}``: an extension and the CRM user who has it (else looked up in the CRM where it can be).
Users = Annotated[dict[str, CrmUserId], AfterValidator(_extensions)]


def _secret(value: str | None, env: str | None, what: str) -> list[str]:
    """The problem with a secret given in the file or by an environment variable's name (none: fine)."""
    if value is not None and env is not None:
        return [f"give either '{what}' or '{what}_env', not both"]
    if env is not None and not os.environ.get(env):
        return [f"the environment variable {env} ({what}) is not set"]
    return []


def secret_value(value: str | None, env: str | None) -> str | None:
    """The secret itself: from the file, or from the environment variable ``env`` names."""
    return value if value is not None else (os.environ.get(env) if env else None)


class CrmCommon(Section):
    """What each CRM's sub-section may say besides its own keys."""

    #: Extensions and their CRM users.
    users: Users = Field(default_factory=dict)
    #: Requests per second the CRM takes, and how many may go at once after a quiet spell (a leaky bucket).
    rate: Annotated[float, Field(gt=0, le=1000)] = 5.0
    burst: Annotated[int, Field(ge=1, le=10_000)] = 10
    #: Seconds one request may take.
    timeout: Annotated[float, Field(gt=0, le=600)] = 15.0


class Bitrix24Settings(CrmCommon):
    """``[crm.bitrix24]``: a local server application on the portal (OAuth), and optionally an incoming webhook for
    the methods that accept one. Bitrix24 takes 2 requests/s with a burst of 50 (5/s on Enterprise)."""

    #: The portal: ``https://example.bitrix24.ru``.
    portal: HttpUrl | None = None
    #: The local application's ``client_id`` and secret (the portal's «Разработчикам» → «Локальное приложение»).
    client_id: str | None = None
    client_secret: str | None = None
    client_secret_env: str | None = None
    #: Where tokens are refreshed (the tests point it at their own server).
    oauth_url: HttpUrl = HttpUrl("https://oauth.bitrix.info/oauth/token/")
    #: An incoming webhook (``https://example.bitrix24.ru/rest/1/abc123/``) for the methods that accept one
    #: (``searchCrmEntities``, ``user.get``); ``register``/``finish`` refuse it (``WRONG_AUTH_TYPE``).
    webhook_url: HttpUrl | None = None
    #: Create a lead for an unknown number (``CRM_CREATE``).
    crm_create: bool = True
    #: The line shown in Bitrix24 (``LINE_NUMBER``); unset: the number the customer dialled.
    line: str | None = None
    #: The PBX a click-to-call from Bitrix24 goes to when the daemon follows several (``[[pbx]] id``).
    pbx: str | None = None
    #: Show an inbound call's card to the client's responsible manager too (``searchCrmEntities``'s ``ASSIGNED_BY``),
    #: whether or not their phone rings.
    route_to_responsible: bool = False
    rate: Annotated[float, Field(gt=0, le=1000)] = 2.0
    burst: Annotated[int, Field(ge=1, le=10_000)] = 50

    def problems(self) -> list[str]:
        return _secret(self.client_secret, self.client_secret_env, "client_secret")


class AmoCrmSettings(CrmCommon):
    """``[crm.amocrm]``: amoCRM or Kommo, ``POST /api/v4/calls`` with a long-lived token, or with OAuth (the
    integration's ``client_id``, secret and redirect URI; the first pair from ``cti crm amocrm-code``). One or the
    other: both given is refused at load."""

    #: The account: ``https://example.amocrm.ru`` (or ``https://example.kommo.com``).
    base_url: HttpUrl | None = None
    #: A private integration's long-lived token (the simpler choice).
    token: str | None = None
    token_env: str | None = None
    #: OAuth: the integration's «ID интеграции», «Секретный ключ» and the redirect URI given when it was created
    #: (sent as written: amoCRM compares it with the integration's).
    client_id: str | None = None
    client_secret: str | None = None
    client_secret_env: str | None = None
    redirect_uri: Annotated[str, Field(pattern=r"^https?://[^\s]{1,2000}$")] | None = None
    #: The source shown on the call in amoCRM.
    source: str = "CTI Companion"
    rate: Annotated[float, Field(gt=0, le=1000)] = 7.0
    burst: Annotated[int, Field(ge=1, le=10_000)] = 7

    @model_validator(mode="after")
    def _one_way_in(self) -> AmoCrmSettings:
        oauth = [k for k in ("client_id", "client_secret", "client_secret_env", "redirect_uri")
                 if getattr(self, k) is not None]
        if oauth and (self.token is not None or self.token_env is not None):
            raise ValueError("give either a long-lived token (token or token_env) or OAuth (client_id, "
                             f"client_secret or client_secret_env, redirect_uri), not both: {', '.join(oauth)} "
                             "set beside the token")
        if oauth and (self.client_id is None or self.redirect_uri is None
                      or (self.client_secret is None and self.client_secret_env is None)):
            raise ValueError("OAuth needs client_id, client_secret (or client_secret_env) and redirect_uri, all "
                             "three as the integration's «Ключи и доступы» shows them")
        return self

    @property
    def oauth(self) -> bool:
        """Signed in with OAuth (the pair kept in the store), not a long-lived token."""
        return self.client_id is not None

    def problems(self) -> list[str]:
        return (_secret(self.token, self.token_env, "token")
                + _secret(self.client_secret, self.client_secret_env, "client_secret"))


class ZammadSettings(CrmCommon):
    """``[crm.zammad]``: Zammad's generic CTI (``/api/v1/cti/<token>``: the URL Zammad's «Generic CTI» shows)."""

    url: HttpUrl | None = None
    url_env: str | None = None
    #: Hang the call up through AMI when Zammad answers ``newCall`` with ``{"action": "reject"}`` (its blocklist).
    reject_hangs_up: bool = False

    def problems(self) -> list[str]:
        return _secret(str(self.url) if self.url else None, self.url_env, "url")


class OneCSettings(CrmCommon):
    """``[crm.onec]``: 1C. Push: the call events as JSON to an HTTP service of the 1C base (``…/hs/…``, Basic
    auth). Pull: ``GET /api/crm/1c/events`` for a configuration that polls, with an integration user's token."""

    push_url: HttpUrl | None = None
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    #: Keep the events for the pull feed (an integration user reads them).
    pull: bool = False

    def problems(self) -> list[str]:
        found = _secret(self.password, self.password_env, "password")
        if self.push_url is None and not self.pull:
            found.append("neither push_url (the 1C base's HTTP service) nor pull = true: 1C would get nothing")
        if self.push_url is not None and not self.username:
            found.append("push_url needs username: the 1C user the HTTP service runs as")
        return found


class WebhookSettings(CrmCommon):
    """``[crm.webhook]``: everything else: each call event as JSON to ``url``, signed with HMAC-SHA256 of
    ``secret`` (``X-CTI-Signature``)."""

    url: HttpUrl | None = None
    secret: str | None = None
    secret_env: str | None = None

    def problems(self) -> list[str]:
        return _secret(self.secret, self.secret_env, "secret")


class CrmSettings(Section):
    """``[crm]``: what every CRM shares, and each CRM pushed to (``docs/crm.md``)."""

    #: The address the CRMs reach this daemon's panel at (``https://cti.example.ru``): recording links and
    #: Bitrix24's handlers are made from it. Unset: no recording links are handed out.
    public_url: HttpUrl | None = None
    #: Hours a recording link handed to a CRM works.
    link_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 72.0
    #: A failed try is retried after ``retry_first_seconds``, each next wait ``retry_factor`` times the last, up to
    #: ``retry_max_seconds`` ...
    retry_first_seconds: Seconds = 2.0
    retry_factor: Annotated[float, Field(ge=1, le=10)] = 2.0
    retry_max_seconds: Seconds = 300.0
    #: ... until the request is this many hours old: then it is given up (``cti crm status``, the admin's panel).
    give_up_hours: Annotated[float, Field(gt=0, le=24 * 90)] = 24.0
    #: Seconds a taken request is held for its sender (a killed daemon's requests are taken again after it).
    lease_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0

    bitrix24: Bitrix24Settings | None = None
    amocrm: AmoCrmSettings | None = None
    zammad: ZammadSettings | None = None
    onec: OneCSettings | None = None
    webhook: WebhookSettings | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CrmSettings:
        if self.retry_first_seconds > self.retry_max_seconds:
            raise ValueError("retry_first_seconds is more than retry_max_seconds")
        return self

    @property
    def enabled(self) -> list[str]:
        """The CRMs pushed to (their sub-sections present), in a fixed order."""
        return [name for name in ("bitrix24", "amocrm", "zammad", "onec", "webhook") if getattr(self, name)]

    def problems(self) -> list[str]:
        """Secrets that are missing or given twice, each with its CRM (``cti check-config``)."""
        found: list[str] = []
        for name in self.enabled:
            found.extend(f"[crm.{name}] {p}" for p in getattr(self, name).problems())
        return found
