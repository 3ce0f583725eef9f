"""Adjusting points in admin, as the clerk, the manager and the superuser see it:
the member's "Adjust points" form, the refusals that land on it and move nothing,
and the approval of large adjustments by a second staff member in the list of
adjustments, with the buttons and the actions, refusals included."""

import re

import pytest

from accounts.models import User
from accounts.phones import mask_phone
from loyalty.models import Adjustment, LedgerEntry, Member
from loyalty.services.adjustments import adjustment_request
from tests.admin import (
    CLERK_PERMISSIONS,
    MANAGER_PERMISSIONS,
    message_levels,
    messages_of,
    staff_member,
)
from tests.factories import earn
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
MASKED = "+86138****8000"
ADJUSTMENTS = "/admin/loyalty/adjustment/"


def adjust_url(member) -> str:
    return f"/admin/loyalty/member/{member.pk}/adjust/"


def member_page(member) -> str:
    return f"/admin/loyalty/member/{member.pk}/change/"


def adjust(client, member, points, reason="goodwill", note="A mug broke at the counter", **more):
    return client.post(
        adjust_url(member),
        {"points": points, "reason": reason, "note": note, **more},
        follow=True,
    )


def balance(member) -> int:
    member.refresh_from_db()
    return member.balance


def adjust_entries(member):
    return list(member.entries.filter(kind=LedgerEntry.Kind.ADJUST))


def approve(client, adjustment, **headers):
    return client.post(f"{ADJUSTMENTS}{adjustment.pk}/approve/", follow=True, headers=headers)


def reject(client, adjustment):
    return client.post(f"{ADJUSTMENTS}{adjustment.pk}/reject/", follow=True)


def run_action(client, action, *adjustments):
    return client.post(
        ADJUSTMENTS,
        {"action": action, "_selected_action": [a.pk for a in adjustments]},
        follow=True,
    )


def status_of(adjustment) -> str:
    adjustment.refresh_from_db()
    return adjustment.status


@pytest.fixture
def member(store):
    earn(store=store, phone=PHONE, amount="300.00")
    return Member.objects.get(phone=PHONE)


@pytest.fixture
def clerk(db):
    return staff_member("+8613900000001", *CLERK_PERMISSIONS, name="Li")


@pytest.fixture
def manager(db):
    return staff_member("+8613900000002", *MANAGER_PERMISSIONS, name="Wang")


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(phone="+8613900000009")


def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def clerk_client(client, clerk):
    return logged_in(client, clerk)


@pytest.fixture
def pending(member, clerk):
    """A clerk's adjustment above the threshold (1000), waiting for approval."""
    return adjustment_request(
        member=member, points=5000, reason="missed_purchase", note="Till was down", staff_user=clerk
    )


# --- The form -------------------------------------------------------------------------------


def test_the_form_asks_for_points_a_reason_from_the_list_and_a_note(clerk_client, member):
    response = clerk_client.get(adjust_url(member))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="points"' in html
    assert re.search(r'<select name="reason"[^>]*>', html)
    for code, label in Adjustment.Reason.choices:
        assert f'<option value="{code}">{label}</option>' in html
    assert re.search(r'<textarea name="note"', html)
    assert 'type="submit" value="Adjust points"' in html
    assert "The member has 300 points now." in html
    assert "more than 1000 points waits for a second staff member" in html


def test_a_small_adjustment_applies_and_the_clerk_sees_it_on_the_member_page(
    clerk_client, member, clerk
):
    response = adjust(clerk_client, member, "57")

    assert response.redirect_chain == [(member_page(member), 302)]
    assert messages_of(response) == ["Adjustment of +57 points applied; the balance is now 357."]
    assert balance(member) == 357
    [entry] = adjust_entries(member)
    assert (entry.points, entry.balance_after, entry.staff_user) == (57, 357, clerk)
    assert entry.reason == "goodwill: A mug broke at the counter"
    newest = response.context["latest_entries"][0]
    assert (newest["entry"], newest["points"]) == (entry, "+57")
    assert newest["cause"] == f"Li ({mask_phone(clerk.phone)})"
    adjustment = Adjustment.objects.get()
    assert (adjustment.requested_by, adjustment.decided_by) == (clerk, clerk)
    assert_ledger_consistent()


def test_a_small_debit_applies(clerk_client, member):
    response = adjust(clerk_client, member, "-120", reason="correction", note="Counted twice")

    assert messages_of(response) == ["Adjustment of -120 points applied; the balance is now 180."]
    assert message_levels(response) == ["success"]
    assert balance(member) == 180
    assert_ledger_consistent()


def test_a_large_adjustment_waits_for_approval_and_moves_nothing(clerk_client, member):
    response = adjust(clerk_client, member, "5000")

    assert response.redirect_chain == [(member_page(member), 302)]
    assert messages_of(response) == [
        "Adjustment of +5000 points is waiting for approval by a second staff member; "
        "no points moved yet."
    ]
    assert message_levels(response) == ["warning"]
    assert balance(member) == 300
    assert adjust_entries(member) == []
    assert Adjustment.objects.get().status == Adjustment.Status.PENDING
    assert "waiting for approval" in response.content.decode()


def test_the_form_says_the_clerks_adjustments_of_the_day_count_together(clerk_client, member):
    adjust(clerk_client, member, "600")
    adjust(clerk_client, member, "-50", reason="correction")

    html = clerk_client.get(adjust_url(member)).content.decode()

    assert "count together for the day" in html
    assert "Today you have adjusted 650 points of this member without a second staff" in html


def test_small_adjustments_past_the_threshold_wait_and_the_clerk_is_told_why(
    clerk_client, member, clerk
):
    adjust(clerk_client, member, "1000")

    response = adjust(clerk_client, member, "1000")

    assert messages_of(response) == [
        "Adjustment of +1000 points is waiting for approval by a second staff member: with "
        "it, the points you adjusted for this member today would come to 2000, more than the "
        "approval threshold of 1000. No points moved yet."
    ]
    assert balance(member) == 1300
    waiting = Adjustment.objects.get(status=Adjustment.Status.PENDING)
    reason = "with its requester&#x27;s other adjustments of the member that day, more points"
    # On the member's page, in the list of adjustments and on the adjustment's own page.
    assert reason in response.content.decode()
    listing = clerk_client.get(ADJUSTMENTS, {"status__exact": "pending"}).content.decode()
    assert f'waiting for approval<div class="help">{reason}' in listing
    assert reason in clerk_client.get(f"{ADJUSTMENTS}{waiting.pk}/change/").content.decode()


def test_a_large_adjustment_says_in_the_list_that_it_is_large(clerk_client, pending):
    listing = clerk_client.get(ADJUSTMENTS).content.decode()

    assert 'waiting for approval<div class="help">more points than the approval threshold' in (
        listing
    )


def test_an_adjustment_below_zero_is_refused_on_the_form_and_moves_nothing(clerk_client, member):
    response = adjust(clerk_client, member, "-301", reason="correction")

    assert response.status_code == 200
    assert response.redirect_chain == []
    assert response.context["form"].errors == {
        "points": ["An adjustment cannot take the balance below zero: the member has 300."]
    }
    assert "An adjustment cannot take the balance below zero" in response.content.decode()
    assert not Adjustment.objects.exists()
    assert balance(member) == 300
    assert adjust_entries(member) == []


def test_a_large_adjustment_below_zero_is_refused_at_once(clerk_client, member):
    response = adjust(clerk_client, member, "-5000", reason="fraud")

    assert "cannot take the balance below zero" in response.content.decode()
    assert not Adjustment.objects.exists()


@pytest.mark.parametrize(
    "points, reason, note, field, message",
    [
        ("0", "goodwill", "x", "points", "zero moves nothing"),
        ("", "goodwill", "x", "points", "Enter the points to add"),
        ("1.5", "goodwill", "x", "points", "Enter a whole number"),
        ("20000000", "goodwill", "x", "points", "at most 10000000 points"),
        ("10", "", "x", "reason", "Choose the reason"),
        ("10", "bonus", "x", "reason", "Select a valid choice"),
        ("10", "goodwill", "  ", "note", "Write a note"),
        ("10", "goodwill", "x" * 501, "note", "at most 500 characters"),
    ],
)
def test_a_form_filled_wrong_says_what_to_fix_and_moves_nothing(
    clerk_client, member, points, reason, note, field, message
):
    response = adjust(clerk_client, member, points, reason=reason, note=note)

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert "Nothing was adjusted" in response.content.decode()
    assert not Adjustment.objects.exists()
    assert balance(member) == 300


def test_staff_without_the_permission_are_refused_on_the_form(client, member):
    viewer = logged_in(client, staff_member("+8613900000005", "view_member"))

    page = viewer.get(adjust_url(member))
    assert page.status_code == 403
    assert "You do not have permission to adjust points." in page.content.decode()

    response = adjust(viewer, member, "57")

    assert response.status_code == 403
    assert "You do not have permission to adjust points." in response.content.decode()
    assert not Adjustment.objects.exists()
    assert balance(member) == 300


def test_staff_who_cannot_see_members_cannot_reach_the_form(client, member):
    logged_in(client, staff_member("+8613900000005", "adjust_points"))

    assert client.get(adjust_url(member)).status_code == 403
    assert adjust(client, member, "57").status_code == 403
    assert balance(member) == 300


def test_the_same_filled_in_form_sent_twice_adjusts_once(clerk_client, member):
    submission = clerk_client.get(adjust_url(member)).context["form"]["submission"].value()

    first = adjust(clerk_client, member, "57", submission=submission)
    again = adjust(clerk_client, member, "57", submission=submission)

    assert messages_of(first) == ["Adjustment of +57 points applied; the balance is now 357."]
    assert messages_of(again) == [
        "This form was sent already and was not applied again; the member's adjustments "
        "below show what was done."
    ]
    assert Adjustment.objects.count() == 1
    assert balance(member) == 357


def test_a_refused_form_can_be_corrected_and_sent_again(clerk_client, member):
    submission = clerk_client.get(adjust_url(member)).context["form"]["submission"].value()
    adjust(clerk_client, member, "-500", submission=submission)

    response = adjust(clerk_client, member, "-50", submission=submission)

    assert messages_of(response) == ["Adjustment of -50 points applied; the balance is now 250."]
    assert balance(member) == 250


def test_an_unknown_member_has_no_form(clerk_client):
    response = clerk_client.get("/admin/loyalty/member/999999/adjust/", follow=True)

    assert response.redirect_chain[-1][0] == "/admin/"
    assert "doesn’t exist" in messages_of(response)[0]


# --- Approval -------------------------------------------------------------------------------


def test_the_list_of_pending_adjustments_offers_approve_and_reject_to_a_manager(
    client, manager, pending
):
    response = logged_in(client, manager).get(ADJUSTMENTS, {"status__exact": "pending"})

    assert list(response.context["cl"].result_list) == [pending]
    html = response.content.decode()
    assert f'formaction="{ADJUSTMENTS}{pending.pk}/approve/">Approve</button>' in html
    assert f'formaction="{ADJUSTMENTS}{pending.pk}/reject/">Reject</button>' in html
    assert MASKED in html and PHONE not in html
    # Who asked and why, on the row.
    assert "Li (+86139****0001)" in html
    assert "purchase not recorded" in html and "Till was down" in html


def test_the_status_filter_lists_only_that_status(client, manager, member, clerk, pending):
    applied = adjustment_request(
        member=member, points=5, reason="goodwill", note="Small", staff_user=clerk
    )
    logged_in(client, manager)

    def listed(status):
        response = client.get(ADJUSTMENTS, {"status__exact": status})
        return list(response.context["cl"].result_list)

    assert listed("pending") == [pending]
    assert listed("applied") == [applied]
    assert listed("rejected") == []


def test_a_manager_approves_and_the_points_move(client, manager, member, clerk, pending):
    response = approve(logged_in(client, manager), pending)

    assert messages_of(response) == [
        f"{MASKED}: Adjustment of +5000 points applied; the balance is now 5300."
    ]
    assert status_of(pending) == Adjustment.Status.APPLIED
    assert (pending.requested_by, pending.decided_by) == (clerk, manager)
    assert balance(member) == 5300
    [entry] = adjust_entries(member)
    assert (entry.points, entry.staff_user) == (5000, clerk)
    assert entry.reason == "missed_purchase: Till was down"
    html = response.content.decode()
    assert "Wang (+86139****0002)" in html  # the approver, on the row
    assert 'formaction="' not in html  # nothing left to decide
    assert_ledger_consistent()


def test_after_a_decision_the_manager_is_back_on_the_page_they_came_from(client, manager, pending):
    filtered = f"http://testserver{ADJUSTMENTS}?status__exact=pending"

    response = logged_in(client, manager).post(
        f"{ADJUSTMENTS}{pending.pk}/approve/", headers={"referer": filtered}
    )

    assert response.status_code == 302
    assert response["Location"] == filtered


def test_a_decision_never_sends_the_manager_to_another_site(client, manager, pending):
    response = logged_in(client, manager).post(
        f"{ADJUSTMENTS}{pending.pk}/reject/", headers={"referer": "https://evil.example/"}
    )

    assert response["Location"] == ADJUSTMENTS


def test_a_manager_approves_with_the_action_and_refusals_are_told_per_row(
    client, manager, member, pending
):
    own = adjustment_request(
        member=member, points=2000, reason="complaint", note="Own", staff_user=manager
    )

    response = run_action(logged_in(client, manager), "approve_selected", pending, own)

    assert messages_of(response) == [
        f"{MASKED}: Adjustment of +5000 points applied; the balance is now 5300.",
        f"{MASKED}: A second staff member must approve this adjustment, not the one who asked.",
    ]
    assert status_of(pending) == Adjustment.Status.APPLIED
    assert status_of(own) == Adjustment.Status.PENDING
    assert balance(member) == 5300
    assert_ledger_consistent()


def test_the_requester_cannot_approve_their_own_and_is_told_why(client, manager, member):
    own = adjustment_request(
        member=member, points=5000, reason="goodwill", note="Mine", staff_user=manager
    )

    response = approve(logged_in(client, manager), own)

    assert messages_of(response) == [
        f"{MASKED}: A second staff member must approve this adjustment, not the one who asked."
    ]
    assert status_of(own) == Adjustment.Status.PENDING
    assert balance(member) == 300
    assert adjust_entries(member) == []


def test_a_clerk_sees_no_approve_button_and_is_refused_approval(clerk_client, member, manager):
    others = adjustment_request(
        member=member, points=5000, reason="goodwill", note="Theirs", staff_user=manager
    )

    html = clerk_client.get(ADJUSTMENTS).content.decode()
    assert "Approve</button>" not in html
    assert "Reject</button>" not in html  # not theirs to withdraw
    assert '<option value="approve_selected">' not in html

    response = approve(clerk_client, others)

    assert messages_of(response) == [
        f"{MASKED}: You do not have permission to approve adjustments."
    ]
    assert status_of(others) == Adjustment.Status.PENDING
    assert balance(member) == 300


def test_a_clerk_withdraws_their_own_request(clerk_client, member, pending):
    html = clerk_client.get(ADJUSTMENTS).content.decode()
    assert "Approve</button>" not in html
    assert f'formaction="{ADJUSTMENTS}{pending.pk}/reject/">Reject</button>' in html

    response = reject(clerk_client, pending)

    assert messages_of(response) == [
        f"{MASKED}: Adjustment of +5000 points rejected; no points moved."
    ]
    assert status_of(pending) == Adjustment.Status.REJECTED
    assert balance(member) == 300


def test_a_manager_rejects_and_nothing_moves(client, manager, member, pending):
    response = run_action(logged_in(client, manager), "reject_selected", pending)

    assert messages_of(response) == [
        f"{MASKED}: Adjustment of +5000 points rejected; no points moved."
    ]
    assert status_of(pending) == Adjustment.Status.REJECTED
    assert pending.decided_by == manager
    assert balance(member) == 300
    assert adjust_entries(member) == []


def test_a_decided_adjustment_is_not_decided_again(client, manager, superuser, member, pending):
    approve(logged_in(client, manager), pending)

    response = reject(logged_in(client, superuser), pending)

    assert messages_of(response) == [f"{MASKED}: This adjustment was applied already."]
    assert status_of(pending) == Adjustment.Status.APPLIED
    assert balance(member) == 5300


def test_a_superuser_approves_a_managers_adjustment(client, manager, superuser, member, store):
    earn(store=store, phone=PHONE, amount="1500.00")
    large = adjustment_request(
        member=member, points=-1200, reason="fraud", note="Stolen card", staff_user=manager
    )

    response = approve(logged_in(client, superuser), large)

    assert messages_of(response) == [
        f"{MASKED}: Adjustment of -1200 points applied; the balance is now 600."
    ]
    assert balance(member) == 600
    assert_ledger_consistent()


def test_approval_is_refused_when_the_balance_no_longer_covers_it(
    client, manager, superuser, member, store
):
    earn(store=store, phone=PHONE, amount="1500.00")
    large = adjustment_request(
        member=member, points=-1500, reason="fraud", note="Stolen card", staff_user=manager
    )
    adjustment_request(member=member, points=-900, reason="fraud", note="More", staff_user=manager)

    response = approve(logged_in(client, superuser), large)

    assert messages_of(response) == [
        f"{MASKED}: An adjustment cannot take the balance below zero: the member has 900."
    ]
    assert status_of(large) == Adjustment.Status.PENDING
    assert balance(member) == 900
    assert_ledger_consistent()


def test_the_adjustment_page_offers_the_decisions_too(client, manager, pending):
    html = logged_in(client, manager).get(f"{ADJUSTMENTS}{pending.pk}/change/").content.decode()

    assert f'formaction="{ADJUSTMENTS}{pending.pk}/approve/">Approve</button>' in html
    assert "Till was down" in html and "Li (+86139****0001)" in html
    assert MASKED in html and PHONE not in html


def test_decisions_answer_only_to_a_post(client, manager, pending):
    response = logged_in(client, manager).get(f"{ADJUSTMENTS}{pending.pk}/approve/")

    assert response.status_code == 405
    assert status_of(pending) == Adjustment.Status.PENDING


def test_adjustments_are_never_added_edited_or_deleted_in_admin(client, superuser, pending):
    logged_in(client, superuser)
    page = f"{ADJUSTMENTS}{pending.pk}/"

    assert 'name="_save"' not in client.get(f"{page}change/").content.decode()
    assert client.post(f"{page}change/", {"points": "1"}).status_code == 403
    assert client.get(f"{page}delete/").status_code == 403
    assert client.post(f"{page}delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{ADJUSTMENTS}add/").status_code == 403
    assert "delete_selected" not in client.get(ADJUSTMENTS).content.decode()
    assert status_of(pending) == Adjustment.Status.PENDING
    assert pending.points == 5000
