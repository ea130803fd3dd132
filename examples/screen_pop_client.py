"""A thin client of CTI Companion in 40 lines: print a screen-pop for every call that rings an extension.

    cti users add crm-bot --role agent --extension 101 --config config.toml
    cti users token crm-bot --config config.toml          # prints the token once
    python examples/screen_pop_client.py ws://127.0.0.1:8080/ws TOKEN

A CRM plug-in would open the customer's card where this prints. The messages are in docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import json
import sys

import websockets


async def follow(url: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async for conn in websockets.connect(url, additional_headers=headers):  # reconnects with back-off
        try:
            async for frame in conn:
                msg = json.loads(frame)
                if msg["type"] == "hello":
                    print(f"connected as {msg['user']['name']} ({msg['user']['role']})", flush=True)
                elif msg["type"] == "call.ringing":
                    who = msg["caller"] or "withheld number"
                    name = f" ({msg['caller_name']})" if msg["caller_name"] else ""
                    via = f", queue {msg['queue']}" if msg["queue"] else ""
                    print(f"RINGING {msg['extension']}: {who}{name} on {msg['called']}{via}", flush=True)
                elif msg["type"] == "call.answered":
                    print(f"ANSWERED by {msg['answered_by']}", flush=True)
                elif msg["type"] == "call.ended":
                    print(f"ENDED {msg['outcome']} after {msg['talk_seconds']:.0f} s of talk", flush=True)
        except websockets.ConnectionClosed:
            continue


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    asyncio.run(follow(sys.argv[1], sys.argv[2]))
