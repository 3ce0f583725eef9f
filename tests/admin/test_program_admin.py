"""The program's rules in admin, as a manager edits them: one page, validation
that says what a value means, a preview of what two sample bills earn and may
redeem under the values in the form before anything is saved, and a read-only
history of who changed what, when, from what to what."""

from decimal import Decimal

import pytest

from accounts.models import User
from loyalty.models import Program, ProgramChange
from tests.admin import messages_of, staff_member

pytestmark = pytest.mark.django_db

RULES = "/admin/loyalty/program/"
HISTORY = "/admin/loyalty/programchange/"
DEFAULTS = {
    "earn_rate": "1.0000",
    "redeem_rate": "100",
    "redeem_max_ratio": "0.50",
    "redeem_min_points": "100",
    "expiry_policy_0": "months",
    "expiry_policy_1": "12",
    "reminder_days": "7",
    "hold_minutes": "15",
    "adjustment_approval_threshold": "1000",
    "promotion_stacking": "best",
}


def rules_page() -> str:
    return f"{RULES}{Program.current().pk}/change/"


def post_rules(client, button="_save", **changes):
    return client.post(rules_page(), {**DEFAULTS, **changes, button: "1"}, follow=True)


def preview_rows(response) -> list[tuple]:
    return [
        (row["amount"], row["earned"], row["max_points"], row["max_discount"])
        for row in response.context["preview"]["bills"]
    ]


@pytest.fixture
def manager(db):
    return staff_member("+8613900000002", "view_program", "change_program", name="Wang")


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def test_the_rules_list_is_the_one_rules_page(manager_client):
    response = manager_client.get(RULES)

    assert response.status_code == 302
    assert response["Location"] == rules_page()


def test_the_page_previews_two_sample_bills_under_the_saved_rules(manager_client):
    response = manager_client.get(rules_page())

    assert preview_rows(response) == [
        (Decimal("100.00"), 100, 5000, Decimal("50.00")),
        (Decimal("1000.00"), 1000, 50000, Decimal("500.00")),
    ]
    html = response.content.decode()
    assert "What these rules do" in html
    assert 'name="_preview" value="Preview"' in html
    assert "Points earned now expire at" in html


def test_preview_shows_the_edited_rules_and_saves_nothing(manager_client):
    response = post_rules(
        manager_client,
        button="_preview",
        earn_rate="1.5",
        redeem_rate="50",
        redeem_max_ratio="0.2",
        expiry_policy_0="never",
        expiry_policy_1="",
    )

    assert response.status_code == 200
    assert response.redirect_chain == []
    assert preview_rows(response) == [
        (Decimal("100.00"), 150, 1000, Decimal("20.00")),
        (Decimal("1000.00"), 1500, 10000, Decimal("200.00")),
    ]
    html = response.content.decode()
    assert "nothing is saved until you press Save" in html
    assert "Points earned now never expire." in html
    assert "Please correct" not in html
    # The form keeps the edited values, ready to save.
    assert 'value="1.5"' in html
    program = Program.current()
    assert (program.earn_rate, program.redeem_rate) == (Decimal("1"), 100)
    assert not ProgramChange.objects.exists()


def test_preview_says_when_the_cap_falls_below_the_minimum(manager_client):
    response = post_rules(manager_client, button="_preview", redeem_min_points="10000")

    small, large = response.context["preview"]["bills"]
    assert (small["max_points"], small["below_minimum"]) == (0, True)
    assert (large["max_points"], large["below_minimum"]) == (50000, False)
    assert "the cap is below the minimum points per redemption" in response.content.decode()


@pytest.mark.parametrize(
    "field, value, explanation",
    [
        ("earn_rate", "0", "points earned per 1.00 spent"),
        ("earn_rate", "-1", "The earn rate must be more than 0"),
        ("earn_rate", "1.23456", "at most 4 decimal places"),
        ("redeem_rate", "0", "the points that make 1.00 off a bill"),
        ("redeem_rate", "-5", "The redeem rate must be at least 1"),
        ("redeem_max_ratio", "1.5", "The cap must be between 0 and 1"),
        ("redeem_max_ratio", "10", "The cap must be between 0 and 1"),
        ("redeem_max_ratio", "-0.1", "The cap must be between 0 and 1"),
        ("redeem_max_ratio", "0.333", "at most 2 decimal places"),
        ("hold_minutes", "0", "at least 1 minute"),
        ("redeem_min_points", "-1", "0 means any number"),
        ("adjustment_approval_threshold", "-1", "wait for a second staff member"),
        ("bonus_daily_cap", "-1", "leave it empty for no cap"),
        ("bonus_daily_cap", "ten", "Enter a whole number."),
    ],
)
@pytest.mark.parametrize("button", ["_save", "_preview"])
def test_a_wrong_value_is_refused_with_an_explanation(
    manager_client, field, value, explanation, button
):
    response = post_rules(manager_client, button=button, **{field: value})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert explanation in " ".join(errors[field])
    assert response.context["preview"] is None
    assert "Correct the values marked above" in response.content.decode()
    assert not ProgramChange.objects.exists()
    assert Program.current().earn_rate == Decimal("1")


def test_the_cap_may_be_0_or_1(manager_client):
    for ratio in ("0", "1"):
        response = post_rules(manager_client, redeem_max_ratio=ratio)
        assert "was changed successfully" in messages_of(response)[0]

    assert Program.current().redeem_max_ratio == Decimal("1")


def test_saving_records_who_changed_what_from_what_to_what(manager_client, manager):
    response = post_rules(
        manager_client, earn_rate="1.5", expiry_policy_0="days", expiry_policy_1="30"
    )

    assert response.redirect_chain[-1][0] == rules_page()
    assert "was changed successfully" in messages_of(response)[0]
    program = Program.current()
    assert (program.earn_rate, program.expiry_policy) == (Decimal("1.5"), "days:30")
    change = ProgramChange.objects.get()
    assert change.changed_by == manager
    assert change.old_values == {"earn_rate": "1.0000", "expiry_policy": "months:12"}
    assert change.new_values == {"earn_rate": "1.5", "expiry_policy": "days:30"}
    # The page itself shows the latest changes.
    html = response.content.decode()
    assert "Latest changes of the rules" in html
    assert "Earn rate: 1.0000 → 1.5" in html
    assert "Wang (+86139****0002)" in html


def test_saving_unchanged_rules_records_nothing_and_says_so(manager_client):
    response = post_rules(manager_client)

    assert messages_of(response) == ["Nothing changed: every rule has its old value."]
    assert not ProgramChange.objects.exists()


def test_the_history_is_listed_and_cannot_be_edited_or_deleted(client, manager_client):
    post_rules(manager_client, redeem_rate="200")
    change = ProgramChange.objects.get()

    listing = manager_client.get(HISTORY)
    assert list(listing.context["cl"].result_list) == [change]
    assert "Redeem rate: 100 → 200" in listing.content.decode()

    client.force_login(User.objects.create_superuser(phone="+8613900000009"))
    page = client.get(f"{HISTORY}{change.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.post(f"{HISTORY}{change.pk}/change/", {}).status_code == 403
    assert client.post(f"{HISTORY}{change.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{HISTORY}add/").status_code == 403
    assert ProgramChange.objects.get().new_values == {"redeem_rate": 200}


def test_the_rules_cannot_be_added_or_deleted(client):
    client.force_login(User.objects.create_superuser(phone="+8613900000009"))
    program = Program.current()

    assert client.get(f"{RULES}add/").status_code == 403
    assert client.post(f"{RULES}{program.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Program.objects.count() == 1


def test_staff_who_may_only_view_see_the_rules_and_the_preview_but_cannot_save(client):
    client.force_login(staff_member("+8613900000001", "view_program"))

    page = client.get(rules_page())

    assert page.status_code == 200
    assert preview_rows(page)[0] == (Decimal("100.00"), 100, 5000, Decimal("50.00"))
    html = page.content.decode()
    assert 'name="_preview"' not in html and 'name="_save"' not in html
    assert post_rules(client, earn_rate="2").status_code == 403
    assert client.get(HISTORY).status_code == 200


def test_the_expiry_policy_is_a_choice_with_the_number_beside_it(manager_client):
    html = manager_client.get(rules_page()).content.decode()

    assert '<option value="months" selected>After N months, at the end of that month</option>' in (
        html
    )
    for choice in ("Never expire", "After N days", "At the end of the year, N years on"):
        assert f">{choice}</option>" in html
    assert 'name="expiry_policy_1" value="12"' in html
    assert 'name="expiry_policy"' not in html, "no box to type the code into"


@pytest.mark.parametrize(
    "choice, number, stored",
    [
        ("never", "", "never"),
        ("never", "7", "never"),
        ("days", "30", "days:30"),
        ("months", "1", "months:1"),
        ("year_end", "0", "year_end:0"),
        ("year_end", "10", "year_end:10"),
    ],
)
def test_each_choice_is_stored_as_the_code_the_ledger_reads(manager_client, choice, number, stored):
    post_rules(manager_client, expiry_policy_0=choice, expiry_policy_1=number)

    assert Program.current().expiry_policy == stored
    assert ProgramChange.objects.get().new_values == {"expiry_policy": stored}


@pytest.mark.parametrize(
    "choice, number, english, chinese",
    [
        ("days", "0", "Enter how many days points last, from 1 to 3650.", "1 到 3650 天"),
        ("days", "", "Enter how many days points last, from 1 to 3650.", "1 到 3650 天"),
        ("months", "121", "Enter how many months points last, from 1 to 120.", "1 到 120 个月"),
        (
            "year_end",
            "-1",
            "Enter in how many years points expire at the end of the year, from 0 (the end "
            "of this year) to 10.",
            "0（即今年年底）到 10 年",
        ),
        ("", "12", "Choose when points expire.", "请选择积分何时过期。"),
        ("weeks", "3", "Choose when points expire.", "请选择积分何时过期。"),
    ],
)
def test_a_wrong_expiry_is_refused_in_the_readers_language(
    manager_client, choice, number, english, chinese
):
    for language, explanation in (("en", english), ("zh-hans", chinese)):
        response = manager_client.post(
            rules_page(),
            {**DEFAULTS, "expiry_policy_0": choice, "expiry_policy_1": number, "_save": "1"},
            headers={"accept-language": language},
        )

        (message,) = response.context["adminform"].form.errors["expiry_policy"]
        assert explanation in message
    assert Program.current().expiry_policy == "months:12"
    assert not ProgramChange.objects.exists()


def test_the_history_and_a_view_only_page_say_the_expiry_in_words(manager_client, client):
    post_rules(manager_client, expiry_policy_0="year_end", expiry_policy_1="1")

    history = manager_client.get(HISTORY).content.decode()
    assert (
        "Expiry policy: after 12 months, at the end of that month → at the end of the year, "
        "1 year on"
    ) in history
    in_chinese = manager_client.get(HISTORY, headers={"accept-language": "zh-hans"})
    assert "过期规则: 12 个月后的月底过期 → 1 年后的年底过期" in in_chinese.content.decode()
    client.force_login(staff_member("+8613900000001", "view_program"))
    page = client.get(rules_page()).content.decode()
    assert "at the end of the year, 1 year on" in page
    assert "year_end:1" not in page


def test_the_daily_cap_on_bonus_points_is_set_recorded_and_lifted(manager_client, client):
    post_rules(manager_client, bonus_daily_cap="300")
    post_rules(manager_client, bonus_daily_cap="")

    assert Program.current().bonus_daily_cap is None
    set_it, lift_it = ProgramChange.objects.order_by("changed_at", "pk")
    assert (set_it.old_values, set_it.new_values) == (
        {"bonus_daily_cap": None},
        {"bonus_daily_cap": 300},
    )
    assert lift_it.new_values == {"bonus_daily_cap": None}
    history = manager_client.get(HISTORY).content.decode()
    assert "Daily cap on bonus points: no cap → 300" in history
    assert "Daily cap on bonus points: 300 → no cap" in history
    client.force_login(staff_member("+8613900000001", "view_program"))
    page = client.get(rules_page()).content.decode()
    assert '<div class="readonly">no cap</div>' in page
