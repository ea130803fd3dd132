"""The replay PBX: recorded AMI traces served over TCP as a real Asterisk would serve them.

A test and demo tool, kept out of the production AMI client's modules (``asterisk.connection``,
``asterisk.protocol``, ``asterisk.messages`` never import it). Its modules: :mod:`.trace` (a trace folder read
once), :mod:`.state` (the PBX's state and the resync answers), :mod:`.actions` (actions read as Asterisk reads
them, the user's rights), :mod:`.session` (one client connection), :mod:`.pbx` (the server and its timeline).
"""

from asterisk.replay.actions import ActionReader, ReceivedAction
from asterisk.replay.pbx import TRACE_GAP, ReplayPbx, run_replay_pbx
from asterisk.replay.state import PbxState
from asterisk.replay.trace import BANNER, Trace, TraceEvent, load_trace

__all__ = ["BANNER", "TRACE_GAP", "ActionReader", "PbxState", "ReceivedAction", "ReplayPbx", "Trace", "TraceEvent",
           "load_trace", "run_replay_pbx"]
