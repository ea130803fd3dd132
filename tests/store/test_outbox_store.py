"""The durable e-mail outbox and users' e-mail addresses, against the interface (every store runs it).

What the mailer and the people it writes to rely on: a mail queued is sent once, by one node, even when two nodes'
mailers take at once; a taker that dies leaves its lease to run out and the mail is taken again; a failed try is
counted and retried when the mailer says, or given up with its error kept; a restart loses nothing; nothing that
could add a header to a mail (a line break, a second address) is queued. Users keep an e-mail address, checked.
"""

from __future__ import annotations

import asyncio

import pytest

from cti.complaints import NewMail
from cti.email_address import BadEmail
from store.repository import MailNotFound, Store, User
from tests.store.conftest import OpenStore

NOW = 1_772_430_000.0  # 2 March 2026
LEASE = 60.0


def mail(n: int = 1, *, to: tuple[str, ...] = ("anna@example.ru",), subject: str | None = None) -> NewMail:
    return NewMail(to=to, subject=subject if subject is not None else f"Жалоба Ж-2026-{n:04d}: вы ответственный",
                   body=f"Здравствуйте!\nЖалоба №{n} передана вам.", about=f"complaint:{n}")


async def test_a_mail_is_taken_with_a_lease_and_sent_once(store: Store) -> None:
    first = await store.queue_mail(mail(1), at=NOW)
    second = await store.queue_mail(mail(2, to=("boss@example.ru", "Anna@Example.RU")), at=NOW + 1)
    assert (first.to, first.about, first.attempts, first.next_try_at, first.sent_at, first.failed_at) == (
        ("anna@example.ru",), "complaint:1", 0, NOW, None, None)
    assert first.body == "Здравствуйте!\nЖалоба №1 передана вам." and first.created_at == NOW
    assert second.to == ("boss@example.ru", "Anna@example.ru")  # the domain folded, the local part as written
    assert await store.take_mail(now=NOW - 1, lease_seconds=LEASE) is None  # not due yet
    taken = await store.take_mail(now=NOW + 5, lease_seconds=LEASE)
    assert taken is not None and taken.id == first.id and taken.next_try_at == NOW + 5 + LEASE  # the oldest first
    taken_next = await store.take_mail(now=NOW + 5, lease_seconds=LEASE)
    assert taken_next is not None and taken_next.id == second.id  # the first is leased
    assert await store.take_mail(now=NOW + 6, lease_seconds=LEASE) is None
    await store.mail_sent(first.id, at=NOW + 7)
    await store.mail_sent(first.id, at=NOW + 99)  # reported twice (a lease ran out meanwhile): the first time stays
    # The second's taker died: its lease runs out and the mail is taken again; the sent one never is.
    again = await store.take_mail(now=NOW + 5 + LEASE, lease_seconds=LEASE)
    assert again is not None and again.id == second.id
    assert await store.take_mail(now=NOW + 6 + LEASE, lease_seconds=LEASE) is None  # leased again till NOW + 125
    [sent] = [m for m in await store.list_mails() if m.id == first.id]
    assert (sent.sent_at, sent.attempts) == (NOW + 7, 1)
    assert [m.id for m in await store.list_mails(pending_only=True)] == [second.id]
    assert [m.id for m in await store.list_mails()] == [second.id, first.id]  # newest first
    assert len(await store.list_mails(limit=1)) == 1
    with pytest.raises(ValueError):
        await store.take_mail(now=NOW, lease_seconds=0)


async def test_two_nodes_taking_at_once_never_take_one_mail(open_store: OpenStore) -> None:
    store = await open_store()
    other_node = await open_store()  # a second store on the same database: another node's mailer
    queued = [await store.queue_mail(mail(n), at=NOW + n) for n in range(1, 7)]
    taken: list[int] = []
    for _ in range(4):
        a, b = await asyncio.gather(store.take_mail(now=NOW + 100, lease_seconds=LEASE),
                                    other_node.take_mail(now=NOW + 100, lease_seconds=LEASE))
        taken.extend(m.id for m in (a, b) if m is not None)
    assert sorted(taken) == [m.id for m in queued]  # each once, none left, none twice


async def test_a_failed_try_is_retried_when_asked_or_given_up_with_its_error(store: Store) -> None:
    queued = await store.queue_mail(mail(), at=NOW)
    taken = await store.take_mail(now=NOW, lease_seconds=LEASE)
    assert taken is not None
    failed = await store.mail_failed(queued.id, "connection refused by smtp.example.ru:587", at=NOW + 1,
                                     next_try_at=NOW + 30)
    assert (failed.attempts, failed.next_try_at, failed.last_error, failed.failed_at) == (
        1, NOW + 30, "connection refused by smtp.example.ru:587", None)
    assert await store.take_mail(now=NOW + 29, lease_seconds=LEASE) is None  # backing off
    retaken = await store.take_mail(now=NOW + 30, lease_seconds=LEASE)
    assert retaken is not None and retaken.attempts == 1
    given_up = await store.mail_failed(queued.id, "550 5.1.1 no such user " + "x" * 5000, at=NOW + 31,
                                       next_try_at=None)
    assert (given_up.attempts, given_up.failed_at) == (2, NOW + 31)
    assert given_up.last_error is not None and given_up.last_error.startswith("550 5.1.1")
    assert len(given_up.last_error) <= 2000
    assert await store.take_mail(now=NOW + 10_000, lease_seconds=LEASE) is None  # never taken again
    assert await store.list_mails(pending_only=True) == []
    # A failure reported after another node sent it changes nothing.
    other = await store.queue_mail(mail(2), at=NOW)
    await store.mail_sent(other.id, at=NOW + 2)
    kept = await store.mail_failed(other.id, "timeout", at=NOW + 3, next_try_at=NOW + 60)
    assert (kept.sent_at, kept.attempts, kept.last_error) == (NOW + 2, 1, None)
    with pytest.raises(MailNotFound):
        await store.mail_failed(other.id + 1000, "x", at=NOW, next_try_at=None)
    with pytest.raises(MailNotFound):
        await store.mail_sent(other.id + 1000, at=NOW)


@pytest.mark.parametrize(("to", "subject"), [
    (("anna@example.ru\r\nBcc: all@example.ru",), "Жалоба"),
    (("anna@example.ru, boss@example.ru",), "Жалоба"),
    (("anna@@example.ru",), "Жалоба"),
    (("anna",), "Жалоба"),
    (("anna@localhost",), "Жалоба"),
    ((), "Жалоба"),
    (("anna@example.ru",), "Жалоба\nBcc: all@example.ru"),
])
async def test_what_could_add_a_header_is_never_queued(store: Store, to: tuple[str, ...], subject: str) -> None:
    with pytest.raises(ValueError):
        await store.queue_mail(mail(to=to, subject=subject), at=NOW)
    assert await store.list_mails() == []


async def test_queued_mail_outlives_a_restart(open_store: OpenStore) -> None:
    store = await open_store()
    queued = await store.queue_mail(mail(), at=NOW)
    taken = await store.take_mail(now=NOW, lease_seconds=LEASE)
    assert taken is not None
    await store.close()  # the daemon stopped (or died) mid-send
    reopened = await open_store()
    assert [m.id for m in await reopened.list_mails(pending_only=True)] == [queued.id]
    again = await reopened.take_mail(now=NOW + LEASE, lease_seconds=LEASE)
    assert again is not None and again.id == queued.id


async def test_a_users_e_mail_is_kept_checked_changed_and_removed(store: Store) -> None:
    anna = await store.add_user(User(name="anna", role="agent", extension="101", password_hash="x",
                                     email="anna@example.ru"))
    assert anna.email == "anna@example.ru"
    assert (await store.get_user("ANNA")) == anna
    boss = await store.add_user(User(name="boss", role="admin", password_hash="y"))
    assert boss.email is None
    await store.add_session("s" * 64, "boss", created_at=NOW, expires_at=NOW + 3600, address=None)
    changed = await store.update_user("boss", email=" Boss@Почта.РФ ")
    assert changed.email == "Boss@почта.рф"
    assert await store.session_grant("s" * 64, NOW + 1) is not None  # an address grants nothing: the login stays
    assert (await store.update_user("boss", display_name="Начальник")).email == "Boss@почта.рф"  # kept
    assert (await store.update_user("boss", email="")).email is None
    for bad in ("boss@example.ru\r\nBcc: x@example.ru", "boss", "a@b@example.ru", "boss@example"):
        with pytest.raises(BadEmail):
            await store.update_user("anna", email=bad)
        with pytest.raises(BadEmail):
            await store.add_user(User(name="eve", role="qa", password_hash="z", email=bad))
    assert (await store.get_user("anna")) == anna and await store.get_user("eve") is None
    assert {u.name: u.email for u in await store.list_users()} == {"anna": "anna@example.ru", "boss": None}
