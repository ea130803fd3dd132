"""A CRM's answer to a caller lookup, read as the untrusted input it is and cleaned before it reaches a pop.

The CRM is another program on the network, written and run by someone else: its answer may hold anything JSON
can. Whatever it holds must not cost the agent the pop, so nothing of it is taken as given:

* The answer is read up to :data:`MAX_ANSWER_BYTES` (a lookup of one number is a few kilobytes; a bigger answer is
  refused, not parsed on the event loop) and parsed with :func:`json.loads`, whose nesting limit is an error we
  catch. Not with ``ui_bridge.jsonin``: that refuses a lone surrogate, and one stray escape in a CRM's notes must
  not throw the whole card away.
* Every string is cleaned by :func:`clean_text`: a lone surrogate (``"\\ud800"``, which has no UTF-8 form, so the
  pop that carried it could not be sent at all) becomes U+FFFD; line breaks and tabs become a space; every other
  C0 or C1 control character, DEL among them, is dropped (an ESC would act on the terminal of whoever prints it);
  and the text is cut to the length the panel's own contact form allows (:mod:`ui_bridge.api_models`).
* A value of the wrong JSON type is left out rather than failing the contact: a number as the e-mail, a list as
  the make. A phone may be a JSON number, and one phone may come as a string instead of a list. A contact with
  no usable name is skipped. At most :data:`MAX_CONTACTS` contacts, each with at most 10 phones and 20 vehicles.
* A year must be a model year and a VIN a VIN by the directory's own rules (:mod:`cti.directory`); otherwise the
  field is left empty rather than shown as something it is not.

The shape (documented for CRM integrators in docs/directory.md): either ``{"contacts": [contact, ...]}`` or one
contact object, where a contact is ``{"name", "kind"?, "phones"?, "email"?, "notes"?, "vehicles"?: [{"make",
"model", "year", "plate", "vin"}]}``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from cti.directory import CONTACT_KINDS, Contact, ContactKind, Vehicle, read_year, valid_vin, valid_year

#: The largest CRM answer read (bytes); a bigger one is treated as a failed lookup.
MAX_ANSWER_BYTES = 256 * 1024
#: Contacts taken from one answer; the card shows a few, the rest would only cost the pop time.
MAX_CONTACTS = 10
MAX_PHONES, MAX_VEHICLES = 10, 20
#: Lengths as the panel's contact form has them (``NewContact``); a longer CRM string is cut.
NAME_LENGTH, NOTES_LENGTH, PHONE_LENGTH, PLATE_LENGTH = 200, 2000, 40, 20

_SURROGATE = re.compile("[\ud800-\udfff]")
#: Line breaks (C0's, NEL and the Unicode separators) and tabs: between words, so they become a space.
_BREAK = re.compile("[\t\n\v\f\r\x85\u2028\u2029]+")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class CrmAnswerError(ValueError):
    """The CRM's answer cannot be used at all (too big, not JSON); the pop goes out with the local card."""


def clean_text(value: object, limit: int) -> str | None:
    """``value`` as text a pop can carry: surrogates replaced, controls dropped, cut to ``limit``; None if empty
    or not a string."""
    if not isinstance(value, str):
        return None
    text = _CONTROL.sub("", _BREAK.sub(" ", _SURROGATE.sub("\ufffd", value))).strip()
    return text[:limit].rstrip() or None


def parse_answer(body: bytes) -> Any:
    """The JSON value of a CRM's answer body; CrmAnswerError when it is no JSON text or nested absurdly deep."""
    try:
        return json.loads(body)
    except RecursionError:
        raise CrmAnswerError("the answer is JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8/16/32
        raise CrmAnswerError(f"the answer is not JSON ({exc})") from None


def _text(limit: int) -> BeforeValidator:
    return BeforeValidator(lambda value: clean_text(value, limit))


def _phones(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    phones = (clean_text(str(p) if isinstance(p, int) and not isinstance(p, bool) else p, PHONE_LENGTH)
              for p in items[:MAX_PHONES])
    return [p for p in phones if p is not None]


def _year(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if valid_year(value) else None
    return read_year(value.strip()) if isinstance(value, str) else None


def _vin(value: object) -> str | None:
    text = clean_text(value, 40)
    return text.upper() if text is not None and valid_vin(text) else None


def _kind(value: object) -> ContactKind:
    return next((kind for kind in CONTACT_KINDS if kind == value), "private")


def _vehicles(value: object) -> list[object]:
    return [v for v in value[:MAX_VEHICLES] if isinstance(v, dict)] if isinstance(value, list) else []


class CrmVehicle(BaseModel):
    """One vehicle of a CRM contact; every field optional, a field of the wrong type left empty."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    make: Annotated[str | None, _text(NAME_LENGTH)] = None
    model: Annotated[str | None, _text(NAME_LENGTH)] = None
    year: Annotated[int | None, BeforeValidator(_year)] = None
    plate: Annotated[str | None, _text(PLATE_LENGTH)] = None
    vin: Annotated[str | None, BeforeValidator(_vin)] = None


class CrmContact(BaseModel):
    """One contact of a CRM's answer, cleaned field by field; only a missing or empty name fails it."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    name: Annotated[str, _text(NAME_LENGTH)]
    kind: Annotated[ContactKind, BeforeValidator(_kind)] = "private"
    phones: Annotated[list[str], BeforeValidator(_phones)] = []
    email: Annotated[str | None, _text(NAME_LENGTH)] = None
    notes: Annotated[str | None, _text(NOTES_LENGTH)] = None
    vehicles: Annotated[list[CrmVehicle], BeforeValidator(_vehicles)] = []

    def contact(self) -> Contact:
        """The contact, without the vehicles that had nothing usable in them (not shown as empty rows)."""
        vehicles = (Vehicle(make=v.make, model=v.model, year=v.year, plate=v.plate, vin=v.vin) for v in self.vehicles)
        return Contact(name=self.name, kind=self.kind, phones=tuple(self.phones), email=self.email, notes=self.notes,
                       vehicles=tuple(v for v in vehicles if any((v.make, v.model, v.year, v.plate, v.vin))))


def crm_contacts(data: object) -> list[Contact]:
    """The usable contacts of a parsed CRM answer (see the module's docstring); never raises."""
    items = data.get("contacts", [data]) if isinstance(data, dict) else []
    if not isinstance(items, list):
        return []
    out: list[Contact] = []
    for item in items:
        if len(out) >= MAX_CONTACTS:
            break
        if not isinstance(item, dict):
            continue
        try:
            out.append(CrmContact.model_validate(item).contact())
        except ValidationError:  # no usable name
            continue
    return out
