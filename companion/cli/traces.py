"""The recorded AMI traces the demo and the replay PBX serve: found by folder or name prefix, read once first."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import fail


def shared_dir() -> Path:
    """Where ../shared is: $CTI_SHARED, else beside the current directory or the installed project."""
    env = os.environ.get("CTI_SHARED")
    if env:
        return Path(env)
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base.parent / "shared"
        if (candidate / "ami-traces").is_dir():
            return candidate
    return Path.cwd().parent / "shared"


def resolve_traces(names: list[str]) -> list[Path]:
    """Trace folders from paths or name prefixes (``07`` is ``07-queue-...``); none given: every trace."""
    root = shared_dir() / "ami-traces"
    if not names:
        found = sorted(p for p in root.glob("*") if (p / "ami.jsonl").is_file()) if root.is_dir() else []
        if not found:
            fail(f"no AMI traces under {root}: set CTI_SHARED to the shared/ folder")
        return found
    out = []
    for name in names:
        path = Path(name)
        if not path.is_dir():
            matches = sorted(root.glob(f"{name}*")) if root.is_dir() else []
            if len(matches) != 1:
                fail(f"no trace folder {name!r} (looked in {root})")
            path = matches[0]
        if not (path / "ami.jsonl").is_file():
            fail(f"{path} is not a trace folder (no ami.jsonl)")
        out.append(path)
    return out


def check_traces(paths: list[Path]) -> None:
    """Read every trace once before serving it: a damaged ``ami.jsonl`` is one line naming its line."""
    from asterisk.replay import load_trace

    for path in paths:
        try:
            load_trace(path)
        except (ValueError, OSError) as exc:
            fail(str(exc))
