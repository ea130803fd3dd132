"""Users, API tokens and login sessions, against the interface (any store runs this suite: tests/store/conftest)."""

from __future__ import annotations

import pytest

from store.repository import Store, User, UserExists, UserNotFound
from tests.store.builders import T0

HOUR = 3600.0


def agent(name: str = "anna", extension: str = "101") -> User:
    return User(name=name, role="agent", extension=extension, display_name="Анна Смирнова", password_hash="scrypt$1")


async def test_a_user_is_found_by_name_whatever_its_case_and_a_name_is_taken_once(store: Store) -> None:
    added = await store.add_user(agent())
    assert added.name == "anna" and added.created_at > 0
    assert await store.get_user("ANNA") == added
    with pytest.raises(UserExists):
        await store.add_user(agent("Anna"))
    await store.add_user(User(name="boss", role="admin"))
    await store.add_user(User(name="audit", role="qa"))
    assert [(u.role, u.name) for u in await store.list_users()] == [("admin", "boss"), ("agent", "anna"),
                                                                    ("qa", "audit")]
    assert await store.get_user("nobody") is None


async def test_a_session_lasts_until_it_expires_and_slides_with_use(store: Store) -> None:
    await store.add_user(agent())
    await store.add_session("s1", "anna", created_at=T0, expires_at=T0 + HOUR, address="10.0.0.5")
    grant = await store.session_grant("s1", T0 + 10)
    assert grant is not None and grant.user.name == "anna" and grant.expires_at == T0 + HOUR
    await store.touch_session("s1", used_at=T0 + 0.5 * HOUR, expires_at=T0 + 1.5 * HOUR)
    grant = await store.session_grant("s1", T0 + 1.2 * HOUR)
    assert grant is not None and grant.last_used_at == T0 + 0.5 * HOUR
    assert await store.session_grant("s1", T0 + 1.5 * HOUR) is None  # expired
    await store.touch_session("s1", used_at=T0 + 2 * HOUR, expires_at=T0 + 3 * HOUR)  # too late: not revived
    assert await store.session_grant("s1", T0 + 2 * HOUR) is None
    with pytest.raises(UserNotFound):
        await store.add_session("s2", "nobody", created_at=T0, expires_at=T0 + HOUR, address=None)


async def test_a_logout_ends_that_session_only(store: Store) -> None:
    await store.add_user(agent())
    for token in ("laptop", "phone"):
        await store.add_session(token, "anna", created_at=T0, expires_at=T0 + HOUR, address=None)
    await store.end_session("laptop")
    await store.end_session("never-existed")
    assert await store.session_grant("laptop", T0) is None
    assert await store.session_grant("phone", T0) is not None


async def test_what_a_user_was_granted_changing_ends_their_sessions_but_not_their_tokens(store: Store) -> None:
    await store.add_user(agent())
    await store.add_token("anna", "token-1", "CRM plug-in")
    await store.add_session("s1", "anna", created_at=T0, expires_at=T0 + HOUR, address=None)
    renamed = await store.update_user("anna", display_name="Анна С.")  # what she may do is unchanged
    assert renamed.display_name == "Анна С." and await store.session_grant("s1", T0) is not None
    await store.update_user("anna", extension="105")
    assert await store.session_grant("s1", T0) is None
    user = await store.user_of_token("token-1")
    assert user is not None and user.extension == "105"
    await store.add_session("s2", "anna", created_at=T0, expires_at=T0 + HOUR, address=None)
    await store.update_user("anna", password_hash="scrypt$2")
    assert await store.session_grant("s2", T0) is None
    with pytest.raises(UserNotFound):
        await store.update_user("nobody", role="qa")


async def test_removing_a_user_takes_their_sessions_and_tokens_in_one_go(store: Store) -> None:
    await store.add_user(agent())
    await store.add_user(agent("oleg", "102"))
    await store.add_token("anna", "token-a", None)
    await store.add_session("s-a", "anna", created_at=T0, expires_at=T0 + HOUR, address=None)
    await store.add_session("s-o", "oleg", created_at=T0, expires_at=T0 + HOUR, address=None)
    await store.remove_user("ANNA")
    assert await store.get_user("anna") is None
    assert await store.user_of_token("token-a") is None
    assert set(await store.grants(["s-a", "token-a", "s-o"])) == {"s-o"}
    with pytest.raises(UserNotFound):
        await store.remove_user("anna")
    with pytest.raises(UserNotFound):
        await store.add_token("anna", "token-b", None)


async def test_grants_of_many_credentials_in_one_question(store: Store) -> None:
    await store.add_user(agent())
    await store.add_user(User(name="boss", role="admin"))
    await store.add_token("boss", "token-boss", None)
    await store.add_session("s-anna", "anna", created_at=T0, expires_at=T0 + HOUR, address=None)
    grants = await store.grants(["s-anna", "token-boss", "unknown"])
    assert set(grants) == {"s-anna", "token-boss"}
    assert grants["s-anna"].user.name == "anna" and grants["s-anna"].expires_at == T0 + HOUR
    assert grants["token-boss"].user.role == "admin" and grants["token-boss"].expires_at is None
    assert await store.grants([]) == {}
