"""The ``[store]`` section of the configuration file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from asterisk.settings import Section


class StoreSettings(Section):
    path: Path = Path("cti.sqlite")
    #: Staged writes are flushed at least this often (seconds) and at least every ``batch_size`` rows.
    flush_interval: Annotated[float, Field(gt=0)] = 0.2
    batch_size: Annotated[int, Field(ge=1)] = 500
    #: Above this many unwritten items the daemon stops reading from the PBX until they are committed.
    max_pending: Annotated[int, Field(ge=100)] = 5_000
