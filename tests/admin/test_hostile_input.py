"""Hostile values in every admin list's filters and search box, and in every object URL
(issue 13): the list, or a reload with `?e=1` as Django answers a filter value it cannot
use, never a 5xx.

The lists come from admin.site's registry and the parameters from each list's own
`list_filter` (a filter that hides itself until it applies included), so a new model
admin or filter is tried without editing this file. The values are those of
tests/hostile_input.py: a table of known culprits, then Hypothesis draws more.
"""

from decimal import Decimal
from urllib.parse import unquote

import pytest
from django.contrib import admin
from django.contrib.admin import FieldListFilter
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.views.main import ERROR_FLAG, SEARCH_VAR
from django.test import RequestFactory
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import User
from catalog.services import reward_order_place
from loyalty.models import Member
from loyalty.services.adjustments import adjustment_request
from loyalty.services.redemptions import redemption_hold
from tests import hostile_input as hostile
from tests.admin import changelist, object_urls
from tests.catalog.factories import RewardItemFactory
from tests.factories import earn

PHONE = "+8613800138000"
MODELS = [pytest.param(model, id=model._meta.label) for model in admin.site._registry]
# The lists that a member's page links to, filtered to that member.
MEMBER_RECORD_LISTS = ["ledgerentry", "lot", "purchase", "redemption", "adjustment"]


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(phone="+8613900000009")


@pytest.fixture
def superuser_client(client, superuser):
    """Logged in as a superuser, to whom every list and every filter shows."""
    client.force_login(superuser)
    client.raise_request_exception = False
    return client


@pytest.fixture
def rows(store, superuser):
    """A member with a purchase, a hold, an adjustment and a reward order, so that the
    lists render rows as well as filters."""
    earn(store=store, phone=PHONE, amount="3000.00")
    member = Member.objects.get(phone=PHONE)
    redemption_hold(
        store=store, member=member, order_id="POS-2", order_total=Decimal("80.00"), points=100
    )
    adjustment_request(
        member=member, points=5, reason="goodwill", note="A mug broke", staff_user=superuser
    )
    reward_order_place(
        member=member, item_id=RewardItemFactory(points=100).pk, quantity=1, store=store
    )


def list_parameters(model, user) -> list[str]:
    """The query parameters of the list's filters, as Django's changelist builds them,
    and the search box's."""
    model_admin = admin.site._registry[model]
    request = RequestFactory().get(changelist(model))
    request.user = user
    parameters = [SEARCH_VAR]
    for list_filter in model_admin.get_list_filter(request):
        if isinstance(list_filter, str):
            list_filter = (list_filter, FieldListFilter.create)
        if isinstance(list_filter, tuple | list):
            field_path, filter_class = list_filter
            field = get_fields_from_path(model, field_path)[-1]
            spec = filter_class(field, request, {}, model, model_admin, field_path=field_path)
        else:
            spec = list_filter(request, {}, model, model_admin)
        parameters += spec.expected_parameters()
    return parameters


def fault(response, asked: str) -> str | None:
    """The server error, if the answer is one. (A list may also answer with a redirect:
    Django's `?e=1`, or the program's one page.)"""
    if response.status_code >= 500:
        return f"{asked}: {response.status_code}"
    return None


@pytest.mark.parametrize("model", MODELS)
def test_every_filter_and_the_search_box_take_known_hostile_values(
    superuser_client, superuser, rows, model
):
    asked = [
        f"{changelist(model)}?{parameter}={value}"
        for parameter in list_parameters(model, superuser)
        for value in hostile.URL_VALUES
    ]

    faults = [fault(superuser_client.get(url), url) for url in asked]

    assert not any(faults), "\n".join(filter(None, faults))


@pytest.mark.parametrize("model", MODELS)
def test_every_object_page_takes_known_hostile_ids(superuser_client, rows, model):
    asked = [url for value in hostile.URL_VALUES for url in object_urls(model, value)]

    faults = [fault(superuser_client.get(url), url) for url in asked]

    assert not any(faults), "\n".join(filter(None, faults))


@pytest.mark.parametrize("model", MODELS)
@hostile.fuzz_settings
@given(data=st.data())
def test_every_filter_and_the_search_box_take_drawn_hostile_values(
    superuser_client, superuser, rows, model, data
):
    parameter = data.draw(st.sampled_from(list_parameters(model, superuser)), label="parameter")
    value = data.draw(hostile.url_values, label="value")
    url = f"{changelist(model)}?{parameter}={value}"

    assert fault(superuser_client.get(url), url) is None


@pytest.mark.parametrize("model_name", MEMBER_RECORD_LISTS)
@pytest.mark.parametrize("member", ["%C2%B2", "%E2%91%A0", "%D9%A3", "%00", hostile.TOO_LARGE])
def test_a_member_filter_that_is_no_member_id_reloads_the_list_as_django_does(
    superuser_client, rows, model_name, member
):
    # Given a member's rows, and a link to them whose member id is no id (the attacker's
    # "²", which str.isdigit() accepts and int() refuses, or a "٣" that int() takes)
    url = reverse(f"admin:loyalty_{model_name}_changelist")

    # When the clerk opens it
    response = superuser_client.get(f"{url}?member={member}", follow=True)

    # Then the list reloads unfiltered with Django's `?e=1`, as for any bad filter value
    assert response.status_code == 200
    assert response.redirect_chain == [(f"{url}?{ERROR_FLAG}=1", 302)]
    assert response.context["cl"].result_count > 0


def model_actions(model, user) -> list[str]:
    request = RequestFactory().get(changelist(model))
    request.user = user
    return list(admin.site._registry[model].get_actions(request))


@pytest.mark.parametrize("model", MODELS)
def test_every_action_takes_hostile_row_ids(superuser_client, superuser, rows, model):
    """A forged form: the rows chosen for an action are no ids of the list."""
    asked = [
        (action, value)
        for action in model_actions(model, superuser)
        for value in [*hostile.URL_VALUES, "abc", "1.5", ""]
    ]

    faults = [
        fault(
            superuser_client.post(
                changelist(model),
                {"action": action, "index": "0", "_selected_action": unquote(value)},
            ),
            f"{action} on {value!r}",
        )
        for action, value in asked
    ]

    assert not any(faults), "\n".join(filter(None, faults))
