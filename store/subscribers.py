"""The subscribers of a bus, by channel, and delivering one message to them: shared by both stores' buses.

A subscriber's callback runs on the event loop; one that raises is logged and the others still get the message
(a panel's bug must not stop another node's pops). A callback removed is never called again, even for a message
being delivered at that moment: delivery walks a copy of the list and skips the removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Subscriber:
    """One callback on one channel (compared by identity: the same callback may subscribe twice)."""

    channel: str
    callback: Callable[[str], None]
    active: bool = True


class Subscribers:
    """The callbacks subscribed on each channel, in subscription order."""

    def __init__(self) -> None:
        self._by_channel: dict[str, list[Subscriber]] = {}

    def add(self, channel: str, callback: Callable[[str], None]) -> tuple[Subscriber, bool]:
        """Subscribe ``callback``; returns it and whether it is the channel's first (so start listening)."""
        subscriber = Subscriber(channel, callback)
        found = self._by_channel.setdefault(channel, [])
        found.append(subscriber)
        return subscriber, len(found) == 1

    def remove(self, subscriber: Subscriber) -> bool:
        """Unsubscribe; returns whether the channel has no subscriber left (so stop listening)."""
        subscriber.active = False
        found = self._by_channel.get(subscriber.channel)
        if found is None:
            return False
        if subscriber in found:
            found.remove(subscriber)
        if found:
            return False
        del self._by_channel[subscriber.channel]
        return True

    def has(self, channel: str) -> bool:
        return channel in self._by_channel

    def channels(self) -> list[str]:
        """The channels with at least one subscriber."""
        return list(self._by_channel)

    def deliver(self, channel: str, payload: str) -> None:
        """Call every subscriber of ``channel`` with ``payload``, in subscription order; log those that raise."""
        for subscriber in list(self._by_channel.get(channel, ())):
            if not subscriber.active:
                continue
            try:
                subscriber.callback(payload)
            except Exception:
                log.exception("bus: a subscriber of channel %r failed on a message", channel)

    def clear(self) -> None:
        for found in self._by_channel.values():
            for subscriber in found:
                subscriber.active = False
        self._by_channel.clear()
