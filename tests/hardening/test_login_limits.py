"""Issue 15, item 6: login attempts are limited per account and per address (django-axes)."""

import pytest
from django.test import override_settings

from tests.factories import make_user

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed log-ins"
MESSAGE = ("Logging in to this account, or from this address, is paused after too many wrong\n"
           "    passwords. Wait 15 minutes and try again")


def login(client, username, password, address="10.0.0.1", **extra):
    return client.post("/login/", {"username": username, "password": password},
                       REMOTE_ADDR=address, **extra)


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(client):
    make_user("rita", password="right-password")
    for _ in range(4):
        assert login(client, "rita", "wrong").status_code == 200  # the form again, with its error
    response = login(client, "rita", "wrong")
    assert response.status_code == 429
    response = login(client, "rita", "right-password", address="10.9.9.9")
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert MESSAGE in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_one_address_trying_many_accounts_is_locked(client):
    make_user("olga", password="right-password")
    for number in range(5):
        login(client, f"user{number}", "wrong", address="10.6.6.6")
    assert login(client, "olga", "right-password", address="10.6.6.6").status_code == 429
    assert login(client, "olga", "right-password", address="10.7.7.7").status_code == 302


def test_a_success_resets_the_count(client):
    make_user("rita", password="right-password")
    for _ in range(4):
        login(client, "rita", "wrong")
    assert login(client, "rita", "right-password").status_code == 302
    client.logout()
    for _ in range(4):
        login(client, "rita", "wrong")
    assert login(client, "rita", "right-password").status_code == 302


@override_settings(BEHIND_TLS_PROXY=True)
def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(client):
    make_user("olga", password="right-password")
    for number in range(5):
        # The client forges the first entry; the proxy appends the address it saw.
        login(client, f"user{number}", "wrong", address="10.0.0.254",
              HTTP_X_FORWARDED_FOR=f"1.2.3.{number}, 203.0.113.7")
    assert login(client, "olga", "right-password", address="10.0.0.254",
                 HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    # Everyone else behind the same proxy still logs in.
    assert login(client, "olga", "right-password", address="10.0.0.254",
                 HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 302
