"""Every admin list opens with no row ticked (issue 14): a clerk who picks an action and
clicks Go acts on the rows they ticked, never on the whole page. The browser test
(tests/e2e/test_admin_lists.py) checks the same in Chromium, where admin's script runs."""

from html.parser import HTMLParser

import pytest
from django.contrib import admin

from accounts.models import User
from accounts.phones import mask_phone
from tests.admin import CUSTOMER_PHONE, changelist, rows_in_every_list

pytestmark = pytest.mark.django_db

LISTS = [
    pytest.param(model, id=model._meta.label)
    for model, model_admin in admin.site._registry.items()
    # The program's rules are one page: its "list" sends the manager there.
    if model._meta.model_name != "program"
]


class RowCheckboxes(HTMLParser):
    """The attributes of each row's checkbox (`action-select`) in a page."""

    def __init__(self):
        super().__init__()
        self.boxes: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "input" and "action-select" in (attributes.get("class") or "").split():
            self.boxes.append(attributes)


def row_checkboxes(html: str) -> list[dict[str, str | None]]:
    parser = RowCheckboxes()
    parser.feed(html)
    return parser.boxes


@pytest.fixture
def superuser_client(client):
    superuser = User.objects.create_superuser(phone="+8613900000009")
    rows_in_every_list(superuser=superuser)
    client.force_login(superuser)
    return client


@pytest.mark.parametrize("model", LISTS)
def test_every_list_opens_with_no_row_ticked(superuser_client, model):
    response = superuser_client.get(changelist(model))

    assert response.status_code == 200
    rows = response.context["cl"].result_list
    assert len(rows) > 0
    boxes = row_checkboxes(response.content.decode())
    if response.context["action_form"] is not None:
        assert len(boxes) == len(rows)
    assert [box for box in boxes if "checked" in box] == []


def test_a_members_checkbox_is_named_by_the_masked_phone(superuser_client):
    response = superuser_client.get("/admin/loyalty/member/")

    (box,) = row_checkboxes(response.content.decode())
    assert box["aria-label"] == f"Select this object for an action - {mask_phone(CUSTOMER_PHONE)}"
    assert "checked" not in box
