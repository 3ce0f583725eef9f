from io import StringIO

import pytest
from django.core.management import CommandError, call_command
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
