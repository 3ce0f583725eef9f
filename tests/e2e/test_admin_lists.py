"""Every admin list in Chromium, where admin's own script runs: none opens with a row
selected (issue 14), so an action applies only to the rows a clerk ticks.

The lists come from admin.site's registry, so a new model admin is opened without editing
this file; each has rows, made through the services (tests/admin: rows_in_every_list)."""

import re

import pytest
from django.contrib import admin
from playwright.sync_api import Page, expect

from accounts.models import User
from tests.admin import changelist, rows_in_every_list

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

# The program's rules are one page: its "list" sends the manager there.
LISTS = [model for model in admin.site._registry if model._meta.model_name != "program"]


def test_no_admin_list_opens_with_a_row_selected(page: Page, sign_in, shot):
    superuser = User.objects.create_superuser(phone="+8613900000009")
    rows_in_every_list(superuser=superuser)
    sign_in(page, superuser)
    lists_with_actions = []

    for model in LISTS:
        response = page.goto(changelist(model))
        assert response.ok, f"{model._meta.label}: {response.status}"
        expect(page.locator("#result_list tbody tr").first).to_be_visible()
        page.wait_for_load_state("load")
        shot(model._meta.label)

        expect(page.locator("#result_list input.action-select:checked")).to_have_count(0)
        expect(page.locator("#result_list tbody tr.selected")).to_have_count(0)
        counter = page.locator(".action-counter")
        if counter.count():
            lists_with_actions.append(model._meta.label)
            expect(counter).to_have_text(re.compile(r"^0 of \d+ selected$"))

    # Those lists have actions a superuser may use; a list without any has no checkboxes.
    assert {"accounts.User", "loyalty.Member", "loyalty.Adjustment"} <= set(lists_with_actions)
