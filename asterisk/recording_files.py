"""Where a call's recordings are: ``[recording]`` and the ONE function that turns a recording's name into a path.

The PBX writes its MixMonitor files into its own folder (``pbx_dir``, Asterisk's ``/var/spool/asterisk/monitor``);
the journal keeps each file by the name the PBX gave it (``CallRecord.recordings``: the basename of
``MIXMONITOR_FILENAME`` and of MixMonitor's ``r()``/``t()`` options). This daemon reads those files from ``dir``:
the same folder when it runs on the PBX's host, else a share of it mounted here (NFS, SMB), one per PBX where it
follows several (``[recording.folders.<pbx id>]``).

A name reaches :func:`recording_path` from the journal, from the transcription queue and, through the QA page,
from a browser's request: it is hostile input. So it is a file name or the PBX's own full path under ``pbx_dir``,
and nothing else (no ``..``, no other folder, no NUL, no control character, no separator after the folder), and the
path it gives never leads out of ``dir``, not even through a symbolic link. Everyone (the player, the recogniser,
the retention) gets paths only here, so that one check is the whole of the defence.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import Field, field_validator

from asterisk.settings import PbxId, Section, ami_text_problem

#: Which calls the daemon records when the dialplan did not (a call the dialplan records is adopted as it is):
#: ``never`` (the default: only the dialplan records), ``all`` answered calls, ``inbound`` answered calls from a
#: trunk, ``selected`` answered calls that went through one of ``queues`` or came in on one of ``dids``.
RecordPolicy = Literal["never", "all", "inbound", "selected"]
#: What the daemon asks MixMonitor to write: ``split`` the mix plus each direction in its own file
#: (``<base>-in.wav``, ``<base>-out.wav``: agent and customer apart, as the lab's split route does), ``stereo`` one
#: two-channel file (MixMonitor's ``D`` option), ``mix`` one mono file of both sides.
RecordLayout = Literal["split", "stereo", "mix"]
#: The side whose channel MixMonitor runs on: its ``-in`` file (and a stereo file's left channel) is what that
#: channel sends (this side's voice), ``-out`` what it hears (the other side).
RecordedSide = Literal["customer", "agent"]

DEFAULT_PBX_DIR = Path("/var/spool/asterisk/monitor")


class RecordingFolder(Section):
    """``[recording.folders.<pbx id>]``: one PBX's folders, where several PBXs write to different places."""

    #: Where this daemon reads the PBX's files (the PBX's own folder on its host, or a share mounted here).
    dir: Path
    #: Where the PBX writes them (the folder of its ``MIXMONITOR_FILENAME``); absent: ``[recording] pbx_dir``.
    pbx_dir: Path | None = None

    @field_validator("dir", "pbx_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return _absolute_folder(value)


class RecordingSettings(Section):
    """``[recording]``: which calls the daemon records, how, where the files are, and how long they are kept."""

    #: Which answered calls the daemon starts MixMonitor on when the dialplan did not (see :data:`RecordPolicy`).
    record: RecordPolicy = "never"
    #: With ``record = "selected"``: the queues whose calls are recorded.
    queues: tuple[str, ...] = ()
    #: With ``record = "selected"``: the dialled numbers (DIDs) whose calls are recorded, as the PBX reports them.
    dids: tuple[str, ...] = ()
    #: What the daemon's MixMonitor writes (see :data:`RecordLayout`).
    layout: RecordLayout = "split"
    #: The side whose channel the dialplan's MixMonitor runs on (the customer's in the lab's dialplan, as the
    #: daemon's own); it says which side a dialplan's ``-in``/``-out`` files (and a stereo file's left) hold.
    dialplan_side: RecordedSide = "customer"
    #: Where the PBX writes recordings (its ``MIXMONITOR_FILENAME`` folder).
    pbx_dir: Path = DEFAULT_PBX_DIR
    #: Where this daemon reads them; absent: ``pbx_dir`` (the daemon runs on the PBX's host).
    dir: Path | None = None
    #: Per PBX, where several PBXs keep their files apart: ``[recording.folders.msk] dir = "/mnt/msk-monitor"``.
    folders: dict[PbxId, RecordingFolder] = Field(default_factory=dict)
    #: Delete the audio of calls older than this many days (their journal rows and transcripts stay); absent:
    #: keep every recording. Needs ``dir`` writable (a share mounted read-write).
    keep_days: Annotated[int, Field(ge=1)] | None = None

    @field_validator("dir", "pbx_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return _absolute_folder(value)

    @field_validator("queues", "dids")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            problem = ami_text_problem(name)
            if problem is not None or not name.strip():
                raise ValueError(f"{name!r} {problem or 'is empty'}")
        return value

    def read_dir(self, pbx: str) -> Path:
        """The folder this daemon reads ``pbx``'s recordings from."""
        folder = self.folders.get(pbx)
        if folder is not None:
            return folder.dir
        return self.dir if self.dir is not None else self.pbx_dir

    def write_dir(self, pbx: str) -> Path:
        """The folder ``pbx`` writes its recordings into (what a full ``MIXMONITOR_FILENAME`` starts with)."""
        folder = self.folders.get(pbx)
        if folder is not None and folder.pbx_dir is not None:
            return folder.pbx_dir
        return self.pbx_dir


def _absolute_folder(value: Path | None) -> Path | None:
    if value is None:
        return None
    text = str(value)
    if "\x00" in text or ami_text_problem(text) is not None:
        raise ValueError("a folder's path is one line of text")
    if not value.is_absolute():
        raise ValueError(f"{text!r} is not an absolute path (a recordings folder is named in full)")
    return value


def recording_name(pbx_dir: Path, name: str) -> str:
    """The file name in ``name``, a basename or the PBX's full path of a file directly under ``pbx_dir``.

    Raises ValueError for anything else: an empty name, ``.``/``..``, a NUL or another control character, a
    separator (``/`` or ``\\``) left after the PBX's folder, an absolute path elsewhere.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("a recording's name is empty")
    if ami_text_problem(name) is not None:
        raise ValueError(f"a recording's name holds a control character: {name!r}")
    if name.startswith("/"):
        path = PurePosixPath(name)
        folder = PurePosixPath(pbx_dir.as_posix())
        if path.parent != folder or ".." in path.parts:
            raise ValueError(f"{name!r} is not a file of the PBX's recordings folder {folder}")
        name = path.name
    if "/" in name or "\\" in name:
        raise ValueError(f"{name!r} is not a file name (it holds a separator)")
    if name in (".", ".."):
        raise ValueError(f"{name!r} is not a file name")
    return name


def recording_path(settings: RecordingSettings, pbx: str, name: str) -> Path:
    """Where this daemon reads the recording the journal calls ``name`` (of PBX ``pbx``): a path inside its folder.

    ``name`` is a file name as the journal stores it, or the PBX's full path under ``pbx_dir``. Raises ValueError
    when it is anything else, or when the file is a symbolic link (or lies behind one) that leads out of the
    folder. The file need not exist: the caller reports a missing file in its own words.
    """
    base = settings.read_dir(pbx)
    file = recording_name(settings.write_dir(pbx), name)
    folder = Path(os.path.realpath(base))
    path = Path(os.path.realpath(base / file))
    if path.parent != folder:
        raise ValueError(f"{name!r} leads out of the recordings folder {base} (a symbolic link?)")
    return path
