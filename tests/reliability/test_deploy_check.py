"""`manage.py check --deploy --fail-level WARNING` passes with the environment the compose
stack gives the web service, when .env holds only what the README says must be set: the
secure defaults live in docker-compose.yml. The development defaults fail it, naming each
setting, and so does a content security policy that no longer protects the admin."""

import os
import re
import secrets
import subprocess
import sys

import pytest
from csp.constants import NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from django.conf import settings
from django.core import checks

from tests import compose

# What the README's production section says must be set in .env.
README_REQUIRED = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
    "DJANGO_ALLOWED_HOSTS": "points.example.com,localhost",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://points.example.com",
    "NUM_PROXIES": "2",
    "SMS_BACKEND": "twilio",
    "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
    "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
    "TWILIO_FROM": "+14155550100",
}


def deploy_check(variables: dict[str, str]) -> subprocess.CompletedProcess:
    """The check in a fresh process, with `variables` and no DJANGO_* of the test run."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env | variables,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_readme_says_to_set_each_of_them():
    readme = settings.BASE_DIR.joinpath("README.md").read_text()
    must_be_set = readme.split("What must be set:")[1].split("With those set")[0]
    for name in README_REQUIRED:
        assert f"`{name}" in must_be_set, name


def test_the_compose_stack_refuses_to_start_without_them():
    with pytest.raises(compose.MissingVariable):
        compose.environment("web", README_REQUIRED | {"DJANGO_SECRET_KEY": ""})


def test_the_deploy_check_passes_with_the_compose_stacks_settings():
    result = deploy_check(compose.environment("web", README_REQUIRED))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("variables", "warnings"),
    [
        (
            {},
            {
                "security.W004",  # DJANGO_SECURE_HSTS_SECONDS
                "security.W008",  # DJANGO_SECURE_SSL_REDIRECT
                "security.W009",  # DJANGO_SECRET_KEY: the development key is refused
                "security.W012",  # DJANGO_SECURE_COOKIES (the session cookie)
                "security.W016",  # DJANGO_SECURE_COOKIES (the CSRF cookie)
            },
        ),
        # Checked only once HSTS is on: the compose stack's defaults, turned off.
        (
            compose.environment(
                "web",
                README_REQUIRED
                | {
                    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "0",
                    "DJANGO_SECURE_HSTS_PRELOAD": "0",
                },
            ),
            {"security.W005", "security.W021"},
        ),
    ],
    ids=["development defaults", "HSTS without subdomains and preload"],
)
def test_weaker_settings_fail_it_naming_each_setting_to_make(variables, warnings):
    result = deploy_check(variables)

    assert result.returncode == 1
    assert set(re.findall(r"security\.W\d+", result.stderr)) == warnings


STRICT = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]


@pytest.mark.parametrize(
    ("policy", "middleware", "warning"),
    [
        ({}, True, "project.W001"),
        ({"DIRECTIVES": STRICT}, False, "project.W001"),
        ({"DIRECTIVES": STRICT, "EXCLUDE_URL_PREFIXES": ["/admin"]}, True, "project.W002"),
        ({"DIRECTIVES": STRICT | {"script-src": [SELF, UNSAFE_INLINE]}}, True, "project.W003"),
        ({"DIRECTIVES": STRICT | {"script-src": [SELF, UNSAFE_EVAL]}}, True, "project.W003"),
        (
            {"DIRECTIVES": {"default-src": ["*"], "frame-ancestors": [NONE]}},
            True,
            "project.W003",
        ),
        (
            {"DIRECTIVES": {k: v for k, v in STRICT.items() if k != "frame-ancestors"}},
            True,
            "project.W004",
        ),
    ],
    ids=[
        "no policy",
        "no middleware",
        "admin left out",
        "inline script",
        "eval",
        "any script",
        "no frame-ancestors",
    ],
)
def test_a_missing_or_weakened_content_security_policy_fails_it(
    settings, policy, middleware, warning
):
    settings.CONTENT_SECURITY_POLICY = policy
    if not middleware:
        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "csp" not in m]

    found = checks.run_checks(tags=[checks.Tags.security], include_deployment_checks=True)

    assert warning in {message.id for message in found}


def test_admin_pages_carry_the_policy(client):
    response = client.get("/admin/login/")

    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
