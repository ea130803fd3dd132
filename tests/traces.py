"""Where the shared AMI traces are, and how a journal is checked against truth.json and cdr.csv.

Every folder of ``../shared/ami-traces`` that has a ``truth.json`` is a test case: a folder added
later is picked up with no code change. The path comes from ``CTI_SHARED`` (default: ``../shared``
beside the repository).
"""

from __future__ import annotations

import csv
import json
import os
from calendar import timegm
from dataclasses import dataclass
from pathlib import Path
from time import strptime
from typing import Any

from asterisk.messages import AmiMessage

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CTI_SHARED", REPO.parent / "shared")).resolve()
TRACES = SHARED / "ami-traces"

#: Fields of truth.json's calls, compared one by one.
TRUTH_FIELDS = ("linkedid", "direction", "caller", "caller_name", "called", "answered", "answered_by",
                "missed_reason", "talk_seconds", "transferred_to", "agents_rung_not_answered", "recording")
#: What the daemon cannot see for a call that was already up when it connected: the CEL-based
#: truth covers the call's whole life, AMI only what happened after login (25-resync-midcall).
UNOBSERVABLE_BEFORE_CONNECT = ("agents_rung_not_answered", "recording")


def trace_dirs() -> list[Path]:
    if not TRACES.is_dir():
        raise RuntimeError(f"AMI traces not found at {TRACES}; set CTI_SHARED to the shared/ folder")
    return sorted(p for p in TRACES.iterdir() if (p / "truth.json").is_file() and (p / "ami.jsonl").is_file())


def trace_ids() -> list[str]:
    return [p.name for p in trace_dirs()]


def load_messages(trace: Path) -> list[AmiMessage]:
    """The messages received in ``ami.jsonl`` (banner and sent actions left out), stamped with ``t``."""
    out = []
    for line in (trace / "ami.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if isinstance(item.get("msg"), list):
            out.append(AmiMessage.from_pairs(item["msg"], received_at=item["t"]))
    return out


def load_sent(trace: Path) -> list[tuple[float, AmiMessage]]:
    """The actions the runner sent on the connection, with their ``t``."""
    out = []
    for line in (trace / "ami.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if isinstance(item.get("sent"), list):
            out.append((item["t"], AmiMessage.from_pairs(item["sent"])))
    return out


def load_truth(trace: Path) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = json.loads((trace / "truth.json").read_text(encoding="utf-8"))["calls"]
    return calls


@dataclass(frozen=True)
class CdrRow:
    src: str
    dst: str
    channel: str
    dstchannel: str
    start: float
    answer: float | None
    end: float
    billsec: int
    disposition: str
    uniqueid: str
    linkedid: str


def _utc(text: str) -> float | None:
    return float(timegm(strptime(text, "%Y-%m-%d %H:%M:%S"))) if text else None


def load_cdr(trace: Path) -> list[CdrRow]:
    with (trace / "cdr.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        start, end = _utc(r["start"]), _utc(r["end"])
        assert start is not None and end is not None
        out.append(CdrRow(r["src"], r["dst"], r["channel"], r["dstchannel"], start, _utc(r["answer"]), end,
                          int(r["billsec"]), r["disposition"], r["uniqueid"], r["linkedid"]))
    return out


def compare_with_truth(journal: list[dict[str, Any]], truth: list[dict[str, Any]]) -> list[str]:
    """Human-readable differences between ``cti calls --format json`` output and truth.json."""
    problems: list[str] = []
    by_id = {c["linkedid"]: c for c in journal}
    if len(journal) != len(truth):
        problems.append(f"journal has {len(journal)} calls, truth {len(truth)}: "
                        f"{sorted(by_id)} vs {sorted(t['linkedid'] for t in truth)}")
    for want in truth:
        got = by_id.get(want["linkedid"])
        if got is None:
            problems.append(f"call {want['linkedid']} missing from the journal")
            continue
        skip = UNOBSERVABLE_BEFORE_CONNECT if not got["complete"] else ()
        for name in TRUTH_FIELDS:
            if name in skip:
                continue
            a, b = got[name], want[name]
            if name == "talk_seconds":
                # Before-connect calls: the answer time is estimated from the channel's age, which
                # includes its ring time; never less than the truth, and only a few seconds more.
                ok = abs(a - b) <= 1.0 if got["complete"] else b - 1.0 <= a <= b + 4.0
                if not ok:
                    problems.append(f"{want['linkedid']}: talk_seconds {a} != {b}")
            elif a != b:
                problems.append(f"{want['linkedid']}: {name} {a!r} != {b!r}")
    return problems


def compare_with_cdr(journal: list[dict[str, Any]], cdr: list[CdrRow], *, agent_prefix: str = "PJSIP/1",
                     epoch: dict[str, float]) -> list[str]:
    """Check the journal against Asterisk's own CDR lines.

    ``epoch`` maps each linkedid to the journal's (started_at, ended_at) as epoch seconds.
    CDR times are whole seconds (truncated), hence the 1-second slack.
    """
    problems: list[str] = []
    linked: dict[str, list[CdrRow]] = {}
    for row in cdr:
        linked.setdefault(row.linkedid, []).append(row)
    for call in journal:
        ids = [call["linkedid"], *call.get("linkedids", [])]
        rows = [r for lid in ids for r in linked.get(lid, [])]
        lid = call["linkedid"]
        if not rows:
            problems.append(f"{lid}: no CDR row for this call")
            continue
        start, end = epoch[lid + ":start"], epoch[lid + ":end"]
        cdr_start = min(r.start for r in rows)
        cdr_end = max(r.end for r in rows)
        if call["complete"] and not (cdr_start - 1 <= start <= cdr_start + 1.999):
            problems.append(f"{lid}: started_at {start} vs CDR start {cdr_start}")
        if not (cdr_end - 1 <= end <= cdr_end + 1.999):
            problems.append(f"{lid}: ended_at {end} vs CDR end {cdr_end}")
        answered_rows = [r for r in rows if r.disposition == "ANSWERED" and r.billsec > 0]
        if call["answered"] and call["direction"] == "inbound":
            who = call["answered_by"]
            if not any(r.dstchannel.startswith(f"PJSIP/{who}-") for r in answered_rows):
                problems.append(f"{lid}: answered by {who}, but no ANSWERED CDR row to PJSIP/{who}")
        if (not call["answered"] and call["direction"] == "inbound"
                and any(r.dstchannel.startswith(agent_prefix) for r in answered_rows)):
            problems.append(f"{lid}: not answered, but CDR has an answered agent row")
        if (call["direction"] == "outbound" and call["answered"]
                and not any("trunk" in r.dstchannel for r in answered_rows)):
            problems.append(f"{lid}: outbound answered, but CDR has no answered trunk row")
    journal_ids = {x for c in journal for x in [c["linkedid"], *c.get("linkedids", [])]}
    for lid in linked:
        if lid not in journal_ids:
            problems.append(f"CDR linkedid {lid} is not in the journal")
    return problems


def hostile_copy(tmp: Path, caller_name: str, banner: str | None = None) -> Path:
    """A copy of trace 01 (Иванов Пётр calls, agent answers) in ``tmp/evil-trace`` with the caller's display
    name (the caller chooses it) and, optionally, the PBX's banner replaced: for tests of what the daemon, the
    CLI and the demo do with hostile strings from the PBX."""
    trace = tmp / "evil-trace"
    trace.mkdir()
    lines = []
    for line in (TRACES / "01-direct-answered" / "ami.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if isinstance(item.get("msg"), list):
            item["msg"] = [[k, caller_name if k == "CallerIDName" and v == "Иванов Пётр" else v]
                           for k, v in item["msg"]]
        elif isinstance(item.get("msg"), str) and banner is not None:
            item["msg"] = banner
        lines.append(json.dumps(item, ensure_ascii=False))
    (trace / "ami.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return trace

