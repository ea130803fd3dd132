"""The replay PBX: recorded AMI traces served over TCP as a real Asterisk would serve them.

A test and demo tool, kept out of the production AMI client's modules (``asterisk.connection``,
``asterisk.protocol``, ``asterisk.messages`` never import it).
"""

from asterisk.replay.pbx import (
    BANNER,
    ActionReader,
    PbxState,
    ReceivedAction,
    ReplayPbx,
    Trace,
    TraceEvent,
    load_trace,
    run_replay_pbx,
)

__all__ = ["BANNER", "ActionReader", "PbxState", "ReceivedAction", "ReplayPbx", "Trace", "TraceEvent",
           "load_trace", "run_replay_pbx"]
