from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

pytestmark = pytest.mark.django_db


def logs_in(username: str, password: str) -> bool:
    # django-axes' backend wants the request it counts failures by.
    return (
        authenticate(RequestFactory().post("/accounts/login/"), username=username, password=password)
        is not None
    )


def run() -> str:
    out = StringIO()
    call_command("ensure_demo_user", stdout=out)
    return out.getvalue()


def test_creates_the_account_once_and_prints_the_password_once(settings):
    settings.EVI360_DEMO_PASSWORD = ""
    first = run()
    password = first.split("password '")[1].split("'")[0]
    assert logs_in("demo", password)
    second = run()
    assert password not in second
    assert "exists" in second


def test_password_from_the_environment(settings):
    settings.EVI360_DEMO_USERNAME = "specialist"
    settings.EVI360_DEMO_PASSWORD = "a-long-demo-pass"
    run()
    assert logs_in("specialist", "a-long-demo-pass")
    settings.EVI360_DEMO_PASSWORD = "another-long-pass"
    run()
    assert logs_in("specialist", "another-long-pass")
