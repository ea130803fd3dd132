"""The ``cti run`` processes of ``bench.cluster``: their configuration files, start, stop, and ``/metrics``.

Every node's file is ``config.example.toml`` (the traces' lab PBX: trunks, queues, voicemail, time zone) turned
into a ``[[pbxs]]`` list of the bench's replay PBXs, each with the example's dial plan and its own AMI port, plus
the node's own ``[store]``, ``[http]`` port and ``[cluster] follow``. The agents' pattern is widened to
``1\\d{2,4}`` (101-106 of the traces, then 10000, 10001, ... for the bench's agents) and one address may hold every
client (the bench's clients all come from loopback; a real centre's come from their own desks).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.popfanout import REPO, cpu_seconds

AGENT_PATTERN = "1\\d{2,4}"


def agent_extensions(n: int) -> list[str]:
    """101-106 (the traces' agents, so their calls pop too) first, then 10000, 10001, ..."""
    first = [str(e) for e in range(101, 107)][:n]
    return first + [str(10_000 + i) for i in range(n - len(first))]


def _toml_value(value: Any) -> str:
    """Strings, numbers, booleans and lists of them are written alike in JSON and TOML; dicts as inline tables."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_value(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


def toml_text(data: Mapping[str, Any]) -> str:
    """Tables and arrays of tables of scalars, lists and inline tables: what a node's file needs, nothing more."""
    lines: list[str] = []
    for name, table in data.items():
        for entry in table if isinstance(table, list) else [table]:
            lines.append(f"[[{name}]]" if isinstance(table, list) else f"[{name}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in entry.items()]
            lines.append("")
    return "\n".join(lines)


def node_config(path: Path, pbx_ports: Mapping[str, int], *, store: Mapping[str, Any], http_port: int,
                follow: Sequence[str] | None) -> Path:
    """Write a node's file at ``path``: the PBXs of ``pbx_ports`` (id -> AMI port), ``follow`` None: no
    ``[cluster]`` section (a single node)."""
    example = tomllib.loads((REPO / "config.example.toml").read_text(encoding="utf-8"))
    ami, pbx = example.pop("ami"), example.pop("pbx")
    pbx["agent_pattern"] = AGENT_PATTERN
    example["store"] = dict(store)
    example["http"] |= {"port": http_port, "max_connections": 100_000, "max_connections_per_address": 100_000}
    example["pbxs"] = [{"id": pbx_id, "name": f"PBX {pbx_id}", **pbx, "ami": {**ami, "port": port}}
                       for pbx_id, port in pbx_ports.items()]
    if follow is not None:
        example["cluster"] = {"follow": list(follow), "lease_retry": 1.0}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(toml_text(example), encoding="utf-8")
    return path


@dataclass
class Node:
    """One ``cti run`` child process: its name, file, panel port and log."""

    name: str
    config: Path
    http_port: int
    log: Path
    proc: asyncio.subprocess.Process | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "companion.cli", "run", "--config", str(self.config), "--log-level", "warning",
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    async def ready(self, limit: float = 60.0) -> None:
        """Wait until the panel answers ``/healthz``."""
        async with httpx.AsyncClient(base_url=self.base) as http, asyncio.timeout(limit):
            while True:
                if self.proc is None or self.proc.returncode is not None:
                    raise SystemExit(f"{self.name} exited at start; its log:\n{self.log_text()[-3000:]}")
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)

    async def metrics(self) -> dict[str, float]:
        """``/metrics`` as ``{'name{label="v"}': value}`` (counters under their sample name, ``..._total``)."""
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as http:
            text = (await http.get("/metrics")).text
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return out

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def warnings(self, last: int = 6) -> list[str]:
        return [line for line in self.log_text().splitlines() if "WARNING" in line or "ERROR" in line][-last:]

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def total(metrics: Mapping[str, float], name: str) -> float:
    """The sum of every series of one metric (every PBX's, say)."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))
