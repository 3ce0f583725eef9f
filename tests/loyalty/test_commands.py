import os
import re
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import translation
from rest_framework.test import APIClient

from loyalty.models import LedgerCheckRun, Member, Store
from tests.factories import earn

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_createstore_prints_a_working_key_alone_on_the_last_line():
    output = run("createstore", "Flagship")

    key = output.strip().splitlines()[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = client.post(
        "/api/v1/purchases",
        {"phone": "13800138000", "order_id": "A", "amount": "10.00"},
        format="json",
    )
    assert response.status_code == 201
    assert Store.objects.get(name="Flagship").api_keys.count() == 1


def test_createstore_refuses_a_name_taken_already():
    run("createstore", "Flagship")
    with pytest.raises(CommandError, match="exists already"):
        run("createstore", "Flagship")


def test_check_ledger_passes_on_a_consistent_ledger_and_records_the_run(store):
    earn(store=store, phone="+8613800138000", amount="100.00")

    output = run("check_ledger")

    assert "1 members checked, 0 breaches" in output
    assert LedgerCheckRun.objects.get().ok


def test_check_ledger_fails_naming_the_member_whose_balance_drifted(store):
    earn(store=store, phone="+8613800138000", amount="100.00")
    member = Member.objects.get()
    Member.objects.filter(pk=member.pk).update(balance=150)

    out = StringIO()
    with pytest.raises(CommandError, match="2 breaches"):
        call_command("check_ledger", stdout=out, stderr=StringIO())

    assert f"member {member.pk}: invariant 1" in out.getvalue()
    assert f"member {member.pk}: invariant 2" in out.getvalue()
    assert LedgerCheckRun.objects.get().breach_count == 2


# --- in the shop's language ------------------------------------------------------------


def manage_in(language: str, *args: str) -> subprocess.CompletedProcess:
    """A command as an operator runs it, in a shell whose LANGUAGE_CODE is the shop's."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**os.environ, "LANGUAGE_CODE": language},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_command_speaks_the_language_the_shop_set():
    refused = manage_in("zh-hans", "createstore", "   ")
    helped = manage_in("zh-hans", "expire_points", "--help")

    assert refused.returncode == 1
    assert refused.stderr.strip() == "CommandError: 门店名称须为 1 到 100 个字符。"
    assert "按日常任务的方式，让过期的积分失效" in helped.stdout
    assert "每个事务处理的会员数" in helped.stdout


def test_a_commands_report_is_in_the_active_language(store):
    earn(store=store, phone="+8613800138000", amount="10.00")

    with translation.override("zh-hans"):
        output = run("check_ledger")

    assert re.fullmatch(r"已检查 1 位会员，发现 0 处问题，用时 [0-9.]+ 秒\n", output)
