"""`manage.py check --deploy --fail-level WARNING` passes with the production settings
the README lists, and the development defaults fail it, naming each of them."""

import os
import re
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

# What the README's production section says must be set (the check's part of it).
PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_ALLOWED_HOSTS": "points.example.com,localhost",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://points.example.com",
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_COOKIES": "1",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "DJANGO_SECURE_HSTS_PRELOAD": "1",
}


def deploy_check(**overrides: str | None) -> subprocess.CompletedProcess:
    """The check in a fresh process, with production variables and no DJANGO_* of ours."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DJANGO_")}
    env |= PRODUCTION | {"DJANGO_SECRET_KEY": secrets.token_urlsafe(64)}
    for name, value in overrides.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_deploy_check_passes_with_the_production_settings():
    result = deploy_check()

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("unset", "warnings"),
    [
        (
            [*PRODUCTION, "DJANGO_SECRET_KEY"],
            {
                "security.W004",  # DJANGO_SECURE_HSTS_SECONDS
                "security.W008",  # DJANGO_SECURE_SSL_REDIRECT
                "security.W009",  # DJANGO_SECRET_KEY: the development key is refused
                "security.W012",  # DJANGO_SECURE_COOKIES (the session cookie)
                "security.W016",  # DJANGO_SECURE_COOKIES (the CSRF cookie)
            },
        ),
        # Checked only once HSTS is on.
        (
            ["DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", "DJANGO_SECURE_HSTS_PRELOAD"],
            {"security.W005", "security.W021"},
        ),
    ],
    ids=["development defaults", "HSTS without subdomains and preload"],
)
def test_the_development_defaults_fail_it_naming_each_setting_to_make(unset, warnings):
    result = deploy_check(**dict.fromkeys(unset))

    assert result.returncode == 1
    assert set(re.findall(r"security\.W\d+", result.stderr)) == warnings
