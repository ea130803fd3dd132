"""The node's Prometheus metrics: read from the counters the daemon already keeps, at scrape time.

Why collectors rather than counters bumped as things happen: the AMI path has a budget of a few microseconds
per event (``companion/daemon.py``), and the daemon, its pipeline, the store and the hub already count what an
operator wants to see (``GET /api/health`` shows the same numbers). A custom collector reads them when Prometheus
asks, so a scrape costs one pass over a handful of integers and nothing is added to the per-event path.

The one measurement nothing kept is the pop latency: :class:`PopTimer` is told of each pop by the panel's
``PopSequencer`` (``ui_bridge/cards.py``) and observes, once the pop is handed to the clients' queues, the time
since the PBX frame that made the phone ring arrived (across nodes: once the pop came back from the store's bus to
the node that made it and was handed to its clients' queues, as every other node's are at about the same time).
The frame's arrival is the effect's PBX time mapped back to this machine's clock with the offset the call model
keeps (``cti/clock.py``): exact when the PBX sends no ``Timestamp``, and within the network's jitter when it does
(the offset is re-read from every stamped event).
Each client's sender task writes the frame on the event loop's next turn.

The CRM push (issue 16, ``ui_bridge/crm_watch.py``) carries the label ``crm``: this node's senders' counters
(``cti_crm_sent_total``, ``cti_crm_retried_total``, ``cti_crm_failed_total``: since the process started) and the
outbox's gauges, for every node alike (``cti_crm_pending``, ``cti_crm_given_up``, ``cti_crm_lag_seconds``: the oldest
waiting request's age), which the scrape reads from the store first (``routes/ops.py``).

Everything about a PBX carries the label ``pbx``: the PBX's short id (``[[pbxs]] id``; ``main`` for a single
``[pbx]``), one series per followed PBX, each read from that PBX's link (its own AMI connection, call book and
counters). A Prometheus target is one node, so the node is Prometheus's own ``instance`` label.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, GCCollector, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from asterisk.connection import AmiClient
from cti.effects import CallRang
from cti.model import CallBook
from cti.records import DEFAULT_PBX
from store.repository import Store

from .api_models import CrmHealth, Health
from .crm_watch import CrmWatch
from .fanout import Fanout
from .hub import Hub

__all__ = ["DEFAULT_PBX", "Node", "NodeCollector", "NodeMetrics", "PbxCounters", "PopTimer"]
#: Pop latency buckets (seconds): the target is 20 ms at p99 (issue 11), a CRM lookup may take up to its
#: ``crm_timeout`` (0.5 s by default, 10 s at most).
POP_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class PbxCounters(Protocol):
    """What the metrics read of one followed PBX (``companion.pbx_link.PbxLink``), never written."""

    @property
    def id(self) -> str: ...

    @property
    def client(self) -> AmiClient | None: ...

    @property
    def book(self) -> CallBook: ...

    @property
    def connected(self) -> bool: ...

    @property
    def following(self) -> bool:
        """This node follows the PBX now (holds its lease); another node may, and this one stands by."""
        ...

    @property
    def events_applied(self) -> int: ...

    @property
    def events_failed(self) -> int: ...

    @property
    def ticks(self) -> int: ...


class Node(Protocol):
    """What the ops endpoints read of the daemon they run in (``companion.daemon.Daemon``), never written."""

    @property
    def links(self) -> Mapping[str, PbxCounters]: ...

    @property
    def store(self) -> Store | None: ...

    @property
    def backlogged(self) -> asyncio.Event | None: ...

    def health(self) -> Health: ...


class NodeCollector(Collector):
    """The daemon's counters as metric families, read at each scrape (see the module's docstring)."""

    def __init__(self, node: Node | None, hub: Hub, fanout: Fanout | None = None, crm: CrmWatch | None = None) -> None:
        self.node = node
        self.hub = hub
        self.fanout = fanout
        self.crm = crm

    def collect(self) -> Iterable[Metric]:
        yield from self._hub()
        if self.fanout is not None:
            yield from self._fanout(self.fanout)
        if self.node is not None:
            yield from self._node(self.node)
        if self.crm is not None and self.crm.configured:
            yield from self._crm(self.crm)

    def _crm(self, crm: CrmWatch) -> Iterator[Metric]:
        """The CRM push: this node's senders' counters, and the outbox as the scrape's read of the store found it."""
        counts = crm.sender_counts()
        counters = [("sent", "CRM requests this node sent and the CRM accepted"),
                    ("retried", "CRM requests this node tried and put back for a later try (the network, a 5xx, a "
                     "rate limit)"),
                    ("failed", "CRM requests this node gave up (refused by the CRM, or too old): see cti crm status")]
        for count, text in counters:
            family = CounterMetricFamily(f"cti_crm_{count}", text, labels=["crm"])
            for crm_name in crm.enabled:
                sender = counts.get(crm_name)
                family.add_metric([crm_name], getattr(sender, count) if sender is not None else 0)
            yield family
        gauges: list[tuple[str, str, Callable[[CrmHealth], float]]] = [
            ("pending", "CRM requests waiting to be sent (all nodes)", lambda h: h.pending),
            ("given_up", "CRM requests given up and not put back (all nodes)", lambda h: h.failed),
            ("lag_seconds", "seconds the oldest waiting CRM request has waited (0: nothing waits)",
             lambda h: h.lag_seconds)]
        for name, text, read in gauges:
            gauge = GaugeMetricFamily(f"cti_crm_{name}", text, labels=["crm"])
            for health in crm.last:
                gauge.add_metric([health.crm], read(health))
            yield gauge

    def describe(self) -> Iterable[Metric]:
        return []  # the families are built at each scrape: nothing to check at registration

    def _hub(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("cti_websocket_clients", "WebSocket clients connected to this node's panel now",
                                value=len(self.hub.clients))
        yield CounterMetricFamily("cti_websocket_dropped_slow", "WebSocket clients disconnected for falling "
                                  "[http] client_queue_size messages behind (close 1013)",
                                  value=self.hub.dropped_slow)

    def _fanout(self, fanout: Fanout) -> Iterator[Metric]:
        """The panel's fan-out across nodes (``ui_bridge/fanout.py``): all 0 on a single node (SQLite)."""
        yield GaugeMetricFamily("cti_fanout_active", "1 while the panel's messages go through the store's bus to "
                                "every panel node, else 0 (a single node, or the bus not subscribed yet)",
                                value=int(fanout.active))
        yield GaugeMetricFamily("cti_fanout_queued", "envelopes waiting to be published on the bus now",
                                value=fanout.queued)
        yield CounterMetricFamily("cti_fanout_sent", "envelopes this node published on the bus", value=fanout.sent)
        yield CounterMetricFamily("cti_fanout_received", "envelopes this node received from the bus (its own "
                                  "included)", value=fanout.received)
        yield CounterMetricFamily("cti_fanout_dropped", "envelopes dropped from the full queue (the bus was too "
                                  "slow or unreachable): messages no node's clients got", value=fanout.dropped)
        yield CounterMetricFamily("cti_fanout_failures", "bus messages the store refused (offered to this node's "
                                  "clients only)", value=fanout.failed)

    def _node(self, node: Node) -> Iterator[Metric]:
        health = node.health()
        links = list(node.links.values())
        per_pbx: list[tuple[type[CounterMetricFamily | GaugeMetricFamily], str, str,
                            Callable[[PbxCounters], float]]] = [
            (CounterMetricFamily, "cti_ami_events", "AMI messages from the PBX applied to the call model (events "
             "and resync answers; rate() gives events/s)", lambda link: max(0, link.events_applied - link.ticks)),
            (GaugeMetricFamily, "cti_ami_connected", "1 while logged in to the PBX's AMI and the connection is "
             "open, else 0", lambda link: int(link.connected)),
            (CounterMetricFamily, "cti_ami_reconnects", "AMI logins after the first one (each after a lost "
             "connection; each one resyncs)",
             lambda link: max(0, link.client.connections - 1) if link.client is not None else 0),
            (CounterMetricFamily, "cti_ami_events_failed", "AMI messages a step of the call model raised on (a "
             "bug; each cost only itself)", lambda link: link.events_failed),
            (GaugeMetricFamily, "cti_calls_in_progress", "calls the daemon follows now on the PBX",
             lambda link: len(link.book.calls)),
            (GaugeMetricFamily, "cti_pbx_following", "1 while this node follows the PBX (holds its lease), 0 while "
             "another node does or nobody can (sum by pbx over the nodes: 1, never 2)",
             lambda link: int(link.following)),
        ]
        for family_of, name, text, read in per_pbx:
            family = family_of(name, text, labels=["pbx"])
            for link in links:
                family.add_metric([link.id], read(link))
            yield family

        store = health.store
        yield GaugeMetricFamily("cti_store_open", "1 while the store is open", value=int(node.store is not None))
        yield GaugeMetricFamily("cti_store_pending_writes", "writes staged and not committed yet (the store's "
                                "write lag)", value=store.pending)
        yield GaugeMetricFamily("cti_store_max_pending_writes", "[store] max_pending: above this many pending "
                                "writes the daemon stops reading the PBX until they are committed",
                                value=store.max_pending)
        yield CounterMetricFamily("cti_store_pauses", "times reading the PBX was paused for the store's backlog",
                                  value=store.pauses)
        yield CounterMetricFamily("cti_store_failures", "times committing the backlog failed (a locked or full "
                                  "database) while reading was paused", value=store.failures)

        counts = [
            ("delivered", "effects the subscriber took without raising"),
            ("failed", "effects the subscriber raised on"),
            ("stalled", "effects the subscriber was cancelled on after its timeout"),
            ("shed", "effects dropped from the subscriber's full queue"),
            ("restarts", "times the subscriber's task was started again after it died"),
        ]
        for count, text in counts:
            counter = CounterMetricFamily(f"cti_subscriber_{count}", text, labels=["subscriber"])
            for subscriber in health.subscribers:
                counter.add_metric([subscriber.name], getattr(subscriber, count))
            yield counter
        queued = GaugeMetricFamily("cti_subscriber_queued", "effects waiting in the subscriber's queue now",
                                   labels=["subscriber"])
        for subscriber in health.subscribers:
            queued.add_metric([subscriber.name], subscriber.queued)
        yield queued


class PopTimer:
    """Observes each screen-pop's latency, from the PBX frame's arrival to the frame queued for the clients."""

    def __init__(self, registry: CollectorRegistry, hub: Hub, node: Node | None, fanout: Fanout | None = None) -> None:
        self.hub = hub
        self.node = node
        self.fanout = fanout
        self.histogram = Histogram(
            "cti_pop_latency_seconds", "screen-pop latency: from the AMI frame that made the phone ring arriving "
            "to the call.ringing frame handed to the clients' sockets (the caller-card lookup included)",
            ["pbx"], registry=registry, buckets=POP_BUCKETS)
        # Each PBX's series from the start, at 0 (a panel without a daemon, a test bench: the default PBX's);
        # kept here, so that a pop does not look its series up by label (prometheus_client locks and hashes).
        self._series = {pbx: self.histogram.labels(pbx)
                        for pbx in (node.links if node is not None else (DEFAULT_PBX,))}

    def on_pop(self, effect: CallRang, lookup: asyncio.Future[None] | None) -> None:
        """``PopSequencer.on_pop``: the pop goes out once ``lookup`` (its caller card) is done, or now (None)."""
        if self.node is None:
            return
        pbx = effect.pbx
        link = self.node.links.get(pbx)
        if link is None:
            return
        arrived = effect.at - link.book.clock.offset  # read now: the offset moves with later frames (its PBX's)
        if lookup is None or lookup.done():
            self._observe(pbx, arrived)
        else:
            lookup.add_done_callback(lambda _: self._observe(pbx, arrived))

    def _observe(self, pbx: str, arrived: float) -> None:
        fanout = self.fanout
        if fanout is not None and fanout.active:  # across nodes: once the pop is back from the bus, on every node
            fanout.after_delivered(lambda: self._record(pbx, arrived))
        elif self.hub.clients:  # a pop nobody is connected to receive is not a pop
            self._record(pbx, arrived)

    def _record(self, pbx: str, arrived: float) -> None:
        series = self._series.get(pbx)
        if series is None:
            series = self._series[pbx] = self.histogram.labels(pbx)
        series.observe(max(0.0, time.time() - arrived))


class NodeMetrics:
    """One node's registry: the daemon's counters, the pop latency, and the process's own (CPU, memory, GC).

    A registry per panel, not prometheus_client's global one: the tests run several daemons in one process.
    """

    def __init__(self, node: Node | None, hub: Hub, fanout: Fanout | None = None, crm: CrmWatch | None = None) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=False)
        self.crm = crm
        registry.register(NodeCollector(node, hub, fanout, crm))
        self.pops = PopTimer(registry, hub, node, fanout)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
