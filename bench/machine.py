"""The machine line every benchmark section starts with: CPUs, memory, OS, Python and the libraries measured."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
from importlib.metadata import version


def machine(*packages: str, with_sqlite: bool = False) -> str:
    """``2 CPUs (AMD EPYC), 23.5 GiB RAM, Linux 6.x, Python 3.11.7, <package> <version>, ...``."""
    cpu, mem = platform.processor() or "unknown CPU", "? GiB"
    with contextlib.suppress(OSError, StopIteration, ValueError):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
        with open("/proc/meminfo", encoding="ascii") as f:
            mem = f"{next(int(line.split()[1]) for line in f if line.startswith('MemTotal:')) / 2**20:.1f} GiB"
    parts = [f"{len(os.sched_getaffinity(0))} CPUs ({cpu})", f"{mem} RAM", f"{platform.system()} {platform.release()}",
             f"Python {platform.python_version()}", *(f"{p} {version(p)}" for p in packages)]
    if with_sqlite:
        parts.append(f"SQLite {sqlite3.sqlite_version}")
    return ", ".join(parts)
