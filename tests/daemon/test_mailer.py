"""The mailer sends the store's outbox to a real SMTP server (aiosmtpd on loopback, STARTTLS, a login).

* A queued mail arrives with its headers (From, To, a Russian subject encoded, Date, a Message-ID made of the outbox
  id) and its UTF-8 body, over STARTTLS after the login, at once when the mailer is woken.
* A server that is down at first: each try fails with the reason in words and the next comes after a growing wait
  (the clock is the test's); once the server is up, the mail is delivered, once.
* A server that refuses for good (5xx): tried until ``give_up_hours``, then given up with its answer kept, and
  ``cti mail status`` shows it.
* A subject or a recipient that would add a header is refused, by the store and, for a row written around it, by the
  mailer, which gives it up unsent.
* ``cti run`` stopped with mails waiting and started again: every mail delivered exactly once.
* ``cti mail test``: the server's answer, or why not, in words.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import time
from asyncio.subprocess import DEVNULL, PIPE
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from companion.config import ConfigError, Settings, load_config, parse_config
from companion.mailer import Mailer, MailResult, message_id
from cti.complaints import NewMail
from store import open_store
from tests.cli_runner import cti, cti_async
from tests.conftest import UNIT
from tests.daemon.conftest import CTI, settings_for, wait_until, write_config
from tests.mail_server import MailServer, SmtpCa, free_port
from tests.traces import REPO

LOGIN = ("cti-mailer", "smtp-secret-1")
SUBJECT = "Жалоба Ж-2026-0001: качество работ — ответственный Анна Смирнова, этап «Рассмотрение»"
BODY = ("Здравствуйте, Анна!\n\nВам назначена жалоба Ж-2026-0001 (клиент Иван Петров, «Шкода Октавия» А123ВС77).\n"
        "Срок этапа: 25.11.2026 18:00.\n\nCTI Companion\n")


def mail_section(server: MailServer, ca: SmtpCa | None, **keys: object) -> dict[str, str]:
    """``sections=`` lines: ``[mail]`` pointed at ``server`` (STARTTLS with the test CA and the login when ``ca``)."""
    lines = ['host = "127.0.0.1"', f"port = {server.port}", 'from_address = "cti@service.example.ru"',
             'from_name = "Автосервис «Колесо»"']
    if ca is not None:
        lines += [f'ca_file = "{ca.ca_file}"', f'username = "{LOGIN[0]}"', f'password = "{LOGIN[1]}"']
    else:
        lines.append('security = "none"')
    lines += [f"{key} = {value}" for key, value in keys.items()]
    return {"mail": "\n".join(lines)}


class Clock:
    """The test's clock: the mailer's time moves only when the test says."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_queued_mail_arrives_over_starttls_with_its_headers_and_utf8_body(tmp_path: Path) -> None:
    ca = SmtpCa.make(tmp_path)
    with MailServer(ca=ca, login=LOGIN) as server:
        # A poll of an hour: the mail arriving at once proves the wake-up, not a poll.
        settings: Settings = settings_for(tmp_path, free_port(), sections=mail_section(server, ca, poll_seconds=3600))
        async with asyncio.timeout(30 * UNIT), open_store(settings.store, region="RU") as store:
            mailer = Mailer(settings.mail, lambda: store, tz=settings.pbx.tzinfo())
            task = asyncio.create_task(mailer.run())
            try:
                await wait_until(lambda: mailer.looks >= 1, 5, "the mailer looked at the empty outbox")
                queued = await store.queue_mail(NewMail(("anna@example.ru", "Oleg@Почта.рф"), SUBJECT, BODY,
                                                        about="complaint:1"), at=1_790_000_000.25)
                mailer.wake()
                (got,) = await server.wait_for(1)
                await wait_until(lambda: mailer.counts["sent"] == 1, 5, "the mail was marked sent")
            finally:
                mailer.stop()
                await asyncio.wait_for(task, 5 * UNIT)
            (stored,) = await store.list_mails()
    message = got.message
    assert got.encrypted and got.login == LOGIN[0]  # STARTTLS, then the login, then the mail
    assert got.mail_from == "cti@service.example.ru"
    assert got.rcpt_tos == ("anna@example.ru", "Oleg@xn--80a1acny.xn--p1ai")  # the Cyrillic domain in IDNA
    assert message["Subject"] == SUBJECT
    assert message["From"].addresses[0].display_name == "Автосервис «Колесо»"
    assert message["From"].addresses[0].addr_spec == "cti@service.example.ru"
    assert [a.addr_spec for a in message["To"].addresses] == ["anna@example.ru", "Oleg@xn--80a1acny.xn--p1ai"]
    assert message["Message-ID"] == message_id(queued, "cti@service.example.ru") == \
        "<cti-outbox-1-1790000000250@service.example.ru>"
    assert parsedate_to_datetime(message["Date"]).timestamp() == 1_790_000_000  # when it was queued (to the second)
    assert message["Date"].endswith("+0300")  # in the site's zone (Europe/Moscow)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "text/plain" and message.get_content_charset() == "utf-8"
    assert message.get_content().replace("\r\n", "\n") == BODY  # text lines are CRLF on the wire (RFC 2046)
    # Seven bits on the wire: the Russian subject and name are encoded words, the body base64 or quoted-printable.
    got.data.decode("ascii")
    assert "=?utf-8?" in got.data.decode("ascii").split("\r\n\r\n")[0]
    assert stored.sent_at is not None and stored.attempts == 1 and stored.last_error is None


async def test_a_server_down_at_first_gets_the_mail_once_it_is_up_after_growing_waits(tmp_path: Path) -> None:
    ca = SmtpCa.make(tmp_path)
    server = MailServer(ca=ca, login=LOGIN)  # not started: its port refuses connections
    settings = settings_for(tmp_path, free_port(), sections=mail_section(
        server, ca, retry_first_seconds=60, retry_factor=2, retry_max_seconds=100, give_up_hours=1))
    clock = Clock(10_000.0)
    results: list[MailResult] = []
    try:
        async with asyncio.timeout(30 * UNIT), open_store(settings.store, region="RU") as store:
            mailer = Mailer(settings.mail, lambda: store, clock=clock, on_result=results.append)
            await store.queue_mail(NewMail(("anna@example.ru",), SUBJECT, BODY), at=clock.now)
            first = await mailer.deliver_next(store)
            assert first is not None and first.outcome == "retry"
            assert first.error is not None and "connection refused" in first.error
            assert f"127.0.0.1:{server.port}" in first.error
            assert first.next_try_at == 10_060  # the first wait
            clock.now = 10_059.9
            assert await mailer.deliver_next(store) is None  # not due yet
            clock.now = 10_060
            second = await mailer.deliver_next(store)
            assert second is not None and second.outcome == "retry" and second.next_try_at == 10_060 + 100  # 2 x 60,
            # capped at retry_max_seconds
            (waiting,) = await store.list_mails(pending_only=True)
            assert waiting.attempts == 2 and waiting.last_error == second.error  # the outbox keeps the reason
            server.start()
            clock.now = 10_160
            third = await mailer.deliver_next(store)
            assert third is not None and third.outcome == "sent"
            assert third.answer is not None and third.answer.code == 250
            (got,) = await server.wait_for(1)
            clock.now = 50_000  # long after: nothing is due any more, nothing goes twice
            assert await mailer.deliver_next(store) is None
            (sent,) = await store.list_mails()
    finally:
        server.stop()
    assert [r.outcome for r in results] == ["retry", "retry", "sent"]
    assert len(server.mails()) == 1 and got.message["Subject"] == SUBJECT
    assert sent.sent_at == 10_160 and sent.attempts == 3


async def test_a_permanent_refusal_is_retried_until_the_give_up_time_then_kept_with_its_answer(
        tmp_path: Path) -> None:
    with MailServer() as server:  # a relay without TLS (security = "none")
        server.refuse = "554 5.7.1 <anna@example.ru>: Relay access denied"
        settings = settings_for(tmp_path, free_port(), sections=mail_section(
            server, None, retry_first_seconds=600, retry_factor=2, retry_max_seconds=1800, give_up_hours=1))
        clock = Clock(100_000.0)
        async with asyncio.timeout(30 * UNIT), open_store(settings.store, region="RU") as store:
            mailer = Mailer(settings.mail, lambda: store, clock=clock)
            await store.queue_mail(NewMail(("anna@example.ru",), "Жалоба Ж-2026-0002", BODY, about="complaint:2"),
                                   at=clock.now)
            tries: list[tuple[float, str, float | None]] = []
            while len(tries) < 10:
                result = await mailer.deliver_next(store)
                assert result is not None, "a mail not given up is due at its next try"
                tries.append((clock.now, result.outcome, result.next_try_at))
                if result.next_try_at is None:
                    break
                clock.now = result.next_try_at
            (kept,) = await store.list_mails()
            clock.now += 100 * 3600
            assert await mailer.deliver_next(store) is None  # given up: never taken again
    # 600 s, then 1200, then capped by the give-up time (an hour after it was queued), then given up there.
    assert tries == [(100_000, "retry", 100_600), (100_600, "retry", 101_800), (101_800, "retry", 103_600),
                     (103_600, "given_up", None)]
    assert kept.failed_at == 103_600 and kept.sent_at is None and kept.attempts == 4
    assert kept.last_error is not None and "554 5.7.1" in kept.last_error and "Relay access denied" in kept.last_error
    assert "permanent" in kept.last_error
    assert server.mails() == []
    config = tmp_path / "config.toml"
    status = cti("mail", "status", "--config", str(config)).stdout
    assert "0 waiting, 0 sent, 1 given up" in status
    assert "Relay access denied" in status and "complaint:2" in status and "after 4 tries" in status


async def test_a_subject_or_recipient_that_would_add_a_header_is_refused_and_never_sent(tmp_path: Path) -> None:
    with MailServer() as server:
        settings = settings_for(tmp_path, free_port(), sections=mail_section(server, None))
        async with asyncio.timeout(30 * UNIT), open_store(settings.store, region="RU") as store:
            for bad in (NewMail(("anna@example.ru",), "Жалоба\r\nBcc: thief@evil.example", BODY),
                        NewMail(("anna@example.ru\r\nBcc: thief@evil.example",), "Жалоба", BODY),
                        NewMail(("anna@example.ru, thief@evil.example",), "Жалоба", BODY)):
                with pytest.raises(ValueError):
                    await store.queue_mail(bad, at=1.0)
            # Rows written around the store's checks (another program, an old version): the mailer refuses them too.
            subject = await store.queue_mail(NewMail(("anna@example.ru",), "Жалоба", BODY), at=2.0)
            recipient = await store.queue_mail(NewMail(("anna@example.ru",), "Жалоба", BODY), at=3.0)
            separator = await store.queue_mail(NewMail(("anna@example.ru",), "Жалоба", BODY), at=4.0)
            with sqlite3.connect(settings.store.path) as conn:
                conn.execute("UPDATE mail_outbox SET subject = ? WHERE id = ?",
                             ("Жалоба\nBcc: thief@evil.example", subject.id))
                conn.execute("UPDATE mail_outbox SET recipients = ? WHERE id = ?",
                             ('["anna@example.ru\\r\\nBcc: thief@evil.example"]', recipient.id))
                conn.execute("UPDATE mail_outbox SET subject = ? WHERE id = ?",
                             ("Жалоба\u2028Bcc: thief@evil.example", separator.id))
            mailer = Mailer(settings.mail, lambda: store, clock=lambda: 10.0)
            outcomes = [await mailer.deliver_next(store) for _ in range(3)]
            assert await mailer.deliver_next(store) is None
            kept = {m.id: m for m in await store.list_mails()}
    assert [r.outcome if r else None for r in outcomes] == ["given_up"] * 3
    for mail in (subject, recipient, separator):
        error = kept[mail.id].last_error
        assert kept[mail.id].failed_at == 10.0 and error is not None and error.startswith("refused, not sent")
    assert "subject" in (kept[subject.id].last_error or "")
    assert "recipient" in (kept[recipient.id].last_error or "")
    assert server.mails() == []  # not one byte of them reached the server


async def test_cti_run_stopped_with_mails_waiting_delivers_each_exactly_once_after_the_restart(
        tmp_path: Path) -> None:
    ca = SmtpCa.make(tmp_path)
    server = MailServer(ca=ca, login=LOGIN)  # down during the first run
    config = write_config(tmp_path, free_port(), sections=mail_section(
        server, ca, retry_first_seconds=0.2, retry_factor=1, retry_max_seconds=0.2, poll_seconds=0.1))
    settings = load_config(config)
    db = tmp_path / "journal.sqlite"
    async with open_store(settings.store, region="RU") as store:
        for n in (1, 2, 3):
            await store.queue_mail(NewMail((f"master{n}@example.ru",), f"Жалоба Ж-2026-000{n}", BODY),
                                   at=time.time())  # the daemon's clock is the real one

    def tries() -> list[int]:
        with sqlite3.connect(db) as conn:
            return [row[0] for row in conn.execute("SELECT attempts FROM mail_outbox WHERE sent_at IS NULL")]

    try:
        async with asyncio.timeout(90 * UNIT):
            first = await asyncio.create_subprocess_exec(*CTI, "run", "--config", str(config), cwd=REPO,
                                                         stdout=DEVNULL, stderr=PIPE)
            try:
                await wait_until(lambda: len(tries()) == 3 and min(tries()) >= 2, 30, "each mail was tried twice")
            finally:
                first.send_signal(signal.SIGTERM)
                _, err = await first.communicate()
            assert first.returncode == 0, err.decode()
            assert "Traceback" not in err.decode() and "connection refused" in err.decode()
            assert server.mails() == []
            server.start()
            second = await asyncio.create_subprocess_exec(*CTI, "run", "--config", str(config), cwd=REPO,
                                                          stdout=DEVNULL, stderr=PIPE)
            try:
                got = await server.wait_for(3, 30)
                # A fourth mail queued now goes out after the first three (oldest first): had any of them been due
                # again, it would have gone before it.
                async with open_store(settings.store, region="RU") as store:
                    await store.queue_mail(NewMail(("master4@example.ru",), "Жалоба Ж-2026-0004", BODY),
                                           at=time.time())
                got = await server.wait_for(4, 30)
                await wait_until(lambda: tries() == [], 10, "every mail marked sent")
            finally:
                second.send_signal(signal.SIGTERM)
                _, err = await second.communicate()
            assert second.returncode == 0, err.decode()
    finally:
        server.stop()
    assert len(server.mails()) == 4
    assert [m.rcpt_tos for m in got] == [(f"master{n}@example.ru",) for n in (1, 2, 3, 4)]
    assert len({m.message["Message-ID"] for m in got}) == 4
    status = (await cti_async("mail", "status", "--config", str(config))).stdout
    assert "0 waiting, 4 sent, 0 given up" in status


async def test_cti_mail_test_prints_the_servers_answer_or_the_error_in_words(tmp_path: Path) -> None:
    ca = SmtpCa.make(tmp_path)
    server = MailServer(ca=ca, login=LOGIN)
    config = write_config(tmp_path, free_port(), sections=mail_section(server, ca))
    try:
        down = await cti_async("mail", "test", "anna@example.ru", "--config", str(config), check=False)
        assert down.returncode == 1
        assert "not sent" in down.stderr and "connection refused" in down.stderr
        server.start()
        sent = await cti_async("mail", "test", "anna@example.ru", "--config", str(config))
        assert "the server answered 250" in sent.stdout and "Ok: queued as T1" in sent.stdout
        (got,) = await server.wait_for(1)
        assert got.rcpt_tos == ("anna@example.ru",) and "проверка почты" in got.message["Subject"]
        injected = await cti_async("mail", "test", "anna@example.ru\r\nBcc: thief@evil.example", "--config",
                                   str(config), check=False)
        assert injected.returncode == 2 and "ADDRESS" in injected.stderr
        server.login = (LOGIN[0], "another-password")  # the site changed its password: the login is refused
        refused = await cti_async("mail", "test", "anna@example.ru", "--config", str(config), check=False)
        assert refused.returncode == 1 and f"the login of '{LOGIN[0]}' was refused" in refused.stderr
        assert "535" in refused.stderr
    finally:
        server.stop()
    assert len(server.mails()) == 1
    other = tmp_path / "other"
    other.mkdir()
    untrusted = write_config(other, free_port(), sections=mail_section(server, SmtpCa.make(other)))
    with MailServer(ca=ca, login=LOGIN, port=server.port):  # its certificate is not of the CA [mail] trusts
        wrong_ca = await cti_async("mail", "test", "anna@example.ru", "--config", str(untrusted), check=False)
    assert wrong_ca.returncode == 1 and "certificate is not trusted" in wrong_ca.stderr


def test_the_examples_mail_block_uncommented_is_checked_before_the_daemon_starts(tmp_path: Path) -> None:
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    start = text.index("[mail]\n")
    end = text.index("\n# [", start) + 1  # to the next section the example leaves commented out ([crm])
    block = re.sub(r"(?m)^# (\w+ = )", r"\1", text[start:end])
    config = tmp_path / "cti.toml"
    config.write_text(text[:start] + block + text[end:], encoding="utf-8")
    mail = load_config(config).mail
    assert (mail.host, mail.effective_port, mail.security, mail.from_address) == (
        "smtp.example.ru", 587, "starttls", "cti@example.ru")
    # The password's variable and the CA file are the site's: missing, the daemon does not start, and says why.
    refused = cti("check-config", "--config", str(config), check=False, env={"CTI_MAIL_PASSWORD": None})
    assert refused.returncode == 2
    assert "mail.password_env: the environment variable CTI_MAIL_PASSWORD is not set" in refused.stderr
    assert "mail.ca_file: /etc/ssl/site-ca.pem: no such file" in refused.stderr
    ca = SmtpCa.make(tmp_path)
    config.write_text(config.read_text(encoding="utf-8").replace("/etc/ssl/site-ca.pem", str(ca.ca_file)),
                      encoding="utf-8")
    assert cti("check-config", "--config", str(config), env={"CTI_MAIL_PASSWORD": "s3cret"}).returncode == 0


@pytest.mark.parametrize(("mail", "says"), [
    ({"host": "smtp.example.ru"}, "give 'from_address'"),
    ({"host": "smtp.example.ru", "from_address": "cti@example.ru\r\nBcc: thief@evil.example"},
     "no spaces, line breaks"),
    ({"host": "smtp.example.ru", "from_address": "cti@example.ru", "from_name": "CTI\nBcc: thief@evil.example"},
     "mail.from_name: one line of text"),
    ({"host": "smtp.example.ru", "from_address": "cti@example.ru", "username": "cti", "password": "x",
      "security": "none"}, "a login is never sent unencrypted"),
    ({"host": "smtp.example.ru", "from_address": "cti@example.ru", "username": "cti"}, "needs its 'password'"),
    ({"host": "smtp.example.ru -oProxyCommand=x", "from_address": "cti@example.ru"}, "mail.host"),
    ({"host": "smtp.example.ru", "from_address": "cti@example.ru", "retry_first_seconds": 600,
      "retry_max_seconds": 60}, "retry_first_seconds is more than retry_max_seconds"),
])
def test_a_mail_section_that_would_go_wrong_later_is_refused_when_read(mail: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config({"ami": {"secret": "x"}, "mail": mail})
    assert says in str(refused.value)
