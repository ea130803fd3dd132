"""The ``[store]`` section of the configuration file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from asterisk.settings import Section

#: The URL schemes of a PostgreSQL store (``url``); asyncpg takes both.
POSTGRES_SCHEMES = ("postgresql", "postgres")


class StoreSettings(Section):
    #: The SQLite file, used when ``url`` is empty.
    path: Path = Path("cti.sqlite")
    #: A PostgreSQL database (``postgresql://user@host:port/db``) instead of the SQLite file; empty: the file.
    url: str = ""
    #: Staged writes are flushed at least this often (seconds) and at least every ``batch_size`` rows.
    flush_interval: Annotated[float, Field(gt=0)] = 0.2
    batch_size: Annotated[int, Field(ge=1)] = 500
    #: Above this many unwritten items the daemon stops reading from the PBX until they are committed.
    max_pending: Annotated[int, Field(ge=100)] = 5_000

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        try:
            scheme = urlsplit(value).scheme
        except ValueError as exc:
            raise ValueError(f"not a URL: {exc}") from None
        if scheme not in POSTGRES_SCHEMES:
            raise ValueError(f"a store URL starts with postgresql:// (got {scheme + '://' if scheme else 'no scheme'});"
                             " leave url empty for the SQLite file at `path`")
        return value

    @property
    def backend(self) -> str:
        """``"postgresql"`` when ``url`` is set, else ``"sqlite"``."""
        return "postgresql" if self.url else "sqlite"

    @property
    def location(self) -> str:
        """Where the store is, for messages and logs: the URL without its password, or the SQLite file."""
        return without_password(self.url) if self.url else str(self.path)


def without_password(url: str) -> str:
    """``url`` with its password (if any) written ``***``: what a message or a log line may show."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()
    except ValueError:
        return "the PostgreSQL database"
