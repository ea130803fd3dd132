"""The WebSocket clients of ``bench.popfanout``, in a process of their own (``python -m bench.popfanout_clients``).

Reads a JSON job on stdin's first line: ``{"url": ..., "clients": [{"index", "token" | null}], "out": path}``.
Connects every client with the ``websockets`` asyncio client (``Authorization: Bearer`` when a token is
given; ``?c=<index>`` is appended to the URL so the baseline server knows who is who), then prints
``ready <connected> <failed>`` on stdout. From then on every frame a client receives is kept as
(client index, ``time.monotonic()`` at arrival, text), and nothing else is done with it until the next
stdin line (``stop``): then the frames are parsed, written to ``out`` as a pickle, and ``done`` is printed.
``time.monotonic()`` is CLOCK_MONOTONIC, system-wide on Linux: it compares with the other processes' stamps.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sys
import time
import zlib
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

CONNECT_CONCURRENCY = 25


def progress(text: str) -> None:
    print(f"  clients: {text}", file=sys.stderr, flush=True)


def dump(path: str, result: dict[str, Any]) -> None:
    with open(path, "wb") as f:
        pickle.dump(result, f)


async def main() -> None:
    job = json.loads(await asyncio.to_thread(sys.stdin.readline))
    url: str = job["url"]
    specs: list[dict[str, Any]] = job["clients"]
    frames: list[tuple[int, float, str]] = []
    closes: list[tuple[int, float, int | None, str]] = []
    conns: dict[int, ClientConnection] = {}
    connected = asyncio.Event()
    failed: list[tuple[int, str]] = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    pending = len(specs)

    async def run_client(spec: dict[str, Any]) -> None:
        nonlocal pending
        index = spec["index"]
        headers = {"Authorization": f"Bearer {spec['token']}"} if spec.get("token") else None
        sep = "&" if "?" in url else "?"
        try:
            async with gate:
                ws = await connect(f"{url}{sep}c={index}", additional_headers=headers, max_queue=None,
                                   ping_interval=None, compression=None, open_timeout=60)
        except Exception as exc:
            failed.append((index, repr(exc)))
            ws = None
        pending -= 1
        if pending == 0:
            connected.set()
        if ws is None:
            return
        conns[index] = ws
        append, now = frames.append, time.monotonic
        try:
            async for text in ws:
                append((index, now(), text if isinstance(text, str) else text.decode()))
        except ConnectionClosed:
            pass
        closes.append((index, time.monotonic(), ws.close_code, ws.close_reason or ""))

    tasks = [asyncio.create_task(run_client(s)) for s in specs]
    await connected.wait()
    progress(f"{len(conns)} connected, {len(failed)} failed")
    for index, why in failed[:5]:
        progress(f"client {index} failed: {why}")
    print(f"ready {len(conns)} {len(failed)}", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "stop"
    stopped_at = time.monotonic()
    early = [c for c in closes if c[1] <= stopped_at]
    kept = list(frames)
    for ws in conns.values():
        ws.transport.abort()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    records = []
    for index, at, text in kept:
        try:
            msg = json.loads(text)
        except ValueError:
            msg = {}
        entry = msg.get("entry") if isinstance(msg.get("entry"), dict) else {}
        records.append((index, at, msg.get("type"), msg.get("linkedid") or entry.get("linkedid"),
                        msg.get("extension"), len(text.encode()), zlib.crc32(text.encode())))
    dump(job["out"], {"records": records, "closed_early": early, "failed": failed, "stopped_at": stopped_at})
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
