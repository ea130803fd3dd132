"""Live call audio (issue 17): the SIP tap the PBX streams calls in progress to, as asyncio streams of frames.

* ``sip_tap.py``: :class:`~companion.live.sip_tap.SipTap`, the daemon's SIP endpoint on the PBX (registration, the
  PBX's ``ChanSpy`` calls answered, each an async iterator of :class:`cti.live.AudioFrame`); the only module that
  imports pyVoIP;
* ``rtp_audio.py``: RTP packets → ordered 16-bit PCM, lost packets and timestamp jumps as bounded silence (pure);
* ``sip_messages.py``: the SIP the tap writes itself (REGISTER with digest, BYE, answers to OPTIONS) (pure).

pyVoIP is GPL-3.0 and optional (``pip install 'cti-companion[live]'``; README): nothing imports ``sip_tap`` unless
``[live] enabled`` is set, and :func:`available` says whether it can be.
"""

from __future__ import annotations

from importlib.util import find_spec


def available() -> bool:
    """Whether pyVoIP (the ``live`` extra) is installed, without importing it."""
    return find_spec("pyVoIP") is not None
