from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def run() -> str:
    out = StringIO()
    call_command("ensure_demo_user", stdout=out)
    return out.getvalue()


def test_creates_the_account_once_and_prints_the_password_once(settings):
    settings.EVI360_DEMO_PASSWORD = ""
    first = run()
    password = first.split("password '")[1].split("'")[0]
    assert authenticate(username="demo", password=password) is not None
    second = run()
    assert password not in second
    assert "exists" in second


def test_password_from_the_environment(settings):
    settings.EVI360_DEMO_USERNAME = "specialist"
    settings.EVI360_DEMO_PASSWORD = "a-long-demo-pass"
    run()
    assert authenticate(username="specialist", password="a-long-demo-pass") is not None
    settings.EVI360_DEMO_PASSWORD = "another-long-pass"
    run()
    assert authenticate(username="specialist", password="another-long-pass") is not None
