"""The baseline server of ``bench.popfanout``: a minimal ``websockets`` broadcast, in a process of its own.

``python -m bench.popfanout_baseline SCHEDULE`` reads a pickled schedule (what the daemon's clients
received in the daemon phase: for every message published, its offset in seconds from the start of the
window, its size in bytes, its type, linkedid and extension, the client indexes that received it, and
whether it is a measured pop). It serves ``websockets.asyncio.server.serve`` on a free loopback port,
prints ``port <n>``, waits until ``<clients>`` (from the schedule) have connected (each says who it is in
``?c=<index>``), prints ``ready``, and on the next stdin line plays the schedule back: at each offset one
frame of the same size and type goes to the same clients with ``websockets.broadcast`` (it writes to each
connection's transport at once, with no queue and no task per client). For a measured pop
``time.monotonic()`` is taken just before the broadcast: the moment the server decides to send. At the
end ``{"stamps": {linkedid: t}, "late": [seconds behind schedule, ...]}`` is written to
``SCHEDULE.answer.json`` and ``done`` is printed.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve


def frame_of(kind: str, linkedid: str | None, extension: str | None, size: int) -> str:
    """A JSON text of ``size`` bytes that says what it stands for."""
    head = json.dumps({"type": kind, "linkedid": linkedid, "extension": extension, "pad": ""})
    pad = max(0, size - len(head.encode()))
    return head[:-2] + "x" * pad + '"}'


def load_schedule(path: str) -> dict[str, Any]:
    with open(path, "rb") as f:
        schedule: dict[str, Any] = pickle.load(f)
    return schedule


def write_answer(path: str, answer: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(answer, f)


async def main(schedule_path: str) -> None:
    schedule = load_schedule(schedule_path)
    items = schedule["items"]
    expected = schedule["clients"]
    conns: dict[int, ServerConnection] = {}
    all_in = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        index = int(query["c"][0])
        conns[index] = ws
        if len(conns) >= expected:
            all_in.set()
        await ws.wait_closed()
        conns.pop(index, None)

    frames = [frame_of(it["type"], it["linkedid"], it["extension"], it["size"]) for it in items]
    async with serve(handler, "127.0.0.1", 0, ping_interval=None, compression=None, max_queue=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"port {port}", flush=True)
        await all_in.wait()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        stamps: dict[str, float] = {}
        late: list[float] = []
        start = time.monotonic() + 0.05
        for item, frame in zip(items, frames, strict=True):
            due = start + item["offset"]
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                late.append(-wait)
            audience = [conns[i] for i in item["recipients"] if i in conns]
            if item["pop"]:
                stamps[item["linkedid"]] = time.monotonic()
            broadcast(audience, frame)
        await asyncio.sleep(1.0)  # let the last frames out before the clients are stopped
        write_answer(schedule_path + ".answer.json", {"stamps": stamps, "late": late})
        print("done", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the orchestrator's "bye": close after the clients stopped


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
