"""Staff adjustments through the service: small ones apply at once, large ones wait
for a second staff member; nothing takes a balance below zero; each step needs its
own permission; and a refusal moves nothing."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from core.errors import AppError
from loyalty.models import Adjustment, LedgerEntry, Lot, Member, Program
from loyalty.services.adjustments import (
    MAX_ADJUSTMENT,
    adjustment_approve,
    adjustment_reject,
    adjustment_request,
)
from tests.admin import CLERK_PERMISSIONS, MANAGER_PERMISSIONS, staff_member
from tests.concurrency import run_together
from tests.factories import earn
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
THRESHOLD = 1000  # the program's default
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the merchant's time zone, TIME_ZONE's default


@pytest.fixture
def member(store):
    earn(store=store, phone=PHONE, amount="300.00")
    return Member.objects.get(phone=PHONE)


@pytest.fixture
def clerk(db):
    return staff_member("+8613900000001", *CLERK_PERMISSIONS, name="Li Clerk")


@pytest.fixture
def manager(db):
    return staff_member("+8613900000002", *MANAGER_PERMISSIONS, name="Wang Manager")


@pytest.fixture
def other_manager(db):
    return staff_member("+8613900000003", *MANAGER_PERMISSIONS)


def request(member, staff, points, reason="goodwill", note="Mug broke at the counter"):
    return adjustment_request(
        member=member, points=points, reason=reason, note=note, staff_user=staff
    )


def balance(member) -> int:
    member.refresh_from_db()
    return member.balance


def adjust_entries(member):
    return list(member.entries.filter(kind=LedgerEntry.Kind.ADJUST))


def test_a_small_credit_applies_at_once_as_one_adjust_entry_by_the_clerk(member, clerk):
    adjustment = request(member, clerk, 57)

    assert adjustment.status == Adjustment.Status.APPLIED
    assert adjustment.decided_by == clerk
    assert adjustment.decided_at is not None
    assert balance(member) == 357
    [entry] = adjust_entries(member)
    assert adjustment.entry == entry
    assert (entry.points, entry.balance_after, entry.staff_user) == (57, 357, clerk)
    assert entry.reason == "goodwill: Mug broke at the counter"
    assert entry.reference == f"adjustment:{adjustment.pk}"
    # The points are a lot of their own, expiring like any points credited today.
    lot = Lot.objects.get(entry=entry)
    assert (lot.points, lot.remaining) == (57, 57)
    assert lot.expires_at == Lot.objects.get(entry__kind=LedgerEntry.Kind.EARN).expires_at
    assert_ledger_consistent()


def test_a_small_debit_takes_points_from_the_lots(member, clerk):
    adjustment = request(member, clerk, -100, reason="correction", note="Counted twice")

    assert adjustment.status == Adjustment.Status.APPLIED
    assert balance(member) == 200
    assert Lot.objects.get(member=member).remaining == 200
    assert adjustment.entry.allocations.get().points == 100
    assert_ledger_consistent()


def test_the_note_is_kept_trimmed(member, clerk):
    adjustment = request(member, clerk, 5, note="  Late receipt  ")

    assert adjustment.note == "Late receipt"


def test_an_adjustment_of_exactly_the_threshold_applies_at_once(member, clerk):
    adjustment = request(member, clerk, THRESHOLD)

    assert adjustment.status == Adjustment.Status.APPLIED
    assert balance(member) == 300 + THRESHOLD


@pytest.mark.parametrize("points", [THRESHOLD + 1, -(THRESHOLD + 1)])
def test_above_the_threshold_it_waits_and_moves_nothing(store, clerk, points):
    earn(store=store, phone=PHONE, amount="2000.00")
    member = Member.objects.get(phone=PHONE)

    adjustment = request(member, clerk, points)

    assert adjustment.status == Adjustment.Status.PENDING
    assert adjustment.entry is None
    assert adjustment.decided_by is None
    assert balance(member) == 2000
    assert adjust_entries(member) == []
    assert_ledger_consistent()


def test_the_threshold_comes_from_the_programs_rules(member, clerk):
    Program.objects.update_or_create(
        pk=Program.SINGLETON_ID, defaults={"adjustment_approval_threshold": 10}
    )

    assert request(member, clerk, 10).status == Adjustment.Status.APPLIED
    assert request(member, clerk, 11).status == Adjustment.Status.PENDING


def test_a_second_staff_member_approves_and_the_points_move(member, clerk, manager):
    pending = request(member, clerk, 5000)

    approved = adjustment_approve(adjustment_id=pending.pk, staff_user=manager)

    assert approved.status == Adjustment.Status.APPLIED
    assert (approved.requested_by, approved.decided_by) == (clerk, manager)
    assert approved.decided_at is not None
    assert balance(member) == 5300
    [entry] = adjust_entries(member)
    assert approved.entry == entry
    # The entry names who asked; the adjustment also names who approved.
    assert (entry.points, entry.staff_user) == (5000, clerk)
    assert entry.reason == "goodwill: Mug broke at the counter"
    assert_ledger_consistent()


def test_the_requester_cannot_approve_their_own_adjustment(member, manager):
    pending = request(member, manager, 5000)

    with pytest.raises(AppError) as refused:
        adjustment_approve(adjustment_id=pending.pk, staff_user=manager)

    assert refused.value.code == "permission_denied"
    assert "second staff member" in str(refused.value.message)
    pending.refresh_from_db()
    assert pending.status == Adjustment.Status.PENDING
    assert balance(member) == 300


def test_not_even_a_superuser_approves_their_own_adjustment(member, django_user_model):
    boss = django_user_model.objects.create_superuser(phone="+8613900000009")
    pending = request(member, boss, 5000)

    with pytest.raises(AppError) as refused:
        adjustment_approve(adjustment_id=pending.pk, staff_user=boss)

    assert refused.value.code == "permission_denied"
    assert balance(member) == 300


def test_a_superuser_approves_another_staff_members_adjustment(member, clerk, django_user_model):
    boss = django_user_model.objects.create_superuser(phone="+8613900000009")
    pending = request(member, clerk, 5000)

    adjustment_approve(adjustment_id=pending.pk, staff_user=boss)

    assert balance(member) == 5300
    assert_ledger_consistent()


def test_a_rejected_adjustment_moves_nothing_and_cannot_be_approved_later(
    member, clerk, manager, other_manager
):
    pending = request(member, clerk, 5000)

    rejected = adjustment_reject(adjustment_id=pending.pk, staff_user=manager)

    assert rejected.status == Adjustment.Status.REJECTED
    assert rejected.decided_by == manager
    assert rejected.entry is None
    with pytest.raises(AppError) as refused:
        adjustment_approve(adjustment_id=pending.pk, staff_user=other_manager)
    assert refused.value.code == "invalid_state"
    assert balance(member) == 300
    assert adjust_entries(member) == []


def test_an_approved_adjustment_is_not_applied_twice(member, clerk, manager, other_manager):
    pending = request(member, clerk, 5000)
    adjustment_approve(adjustment_id=pending.pk, staff_user=manager)

    with pytest.raises(AppError) as refused:
        adjustment_approve(adjustment_id=pending.pk, staff_user=other_manager)

    assert refused.value.code == "invalid_state"
    assert balance(member) == 5300
    assert len(adjust_entries(member)) == 1


def test_the_requester_may_withdraw_their_own_request(member, clerk):
    pending = request(member, clerk, 5000)

    withdrawn = adjustment_reject(adjustment_id=pending.pk, staff_user=clerk)

    assert (withdrawn.status, withdrawn.decided_by) == (Adjustment.Status.REJECTED, clerk)
    assert balance(member) == 300


def test_a_clerk_cannot_reject_another_staff_members_request(member, clerk, manager):
    other_clerk = staff_member("+8613900000004", *CLERK_PERMISSIONS)
    pending = request(member, manager, 5000)

    with pytest.raises(AppError) as refused:
        adjustment_reject(adjustment_id=pending.pk, staff_user=other_clerk)

    assert refused.value.code == "permission_denied"
    pending.refresh_from_db()
    assert pending.status == Adjustment.Status.PENDING


@pytest.mark.parametrize("points", [-301, -(THRESHOLD + 1)])
def test_no_adjustment_takes_the_balance_below_zero_and_nothing_is_recorded(member, clerk, points):
    with pytest.raises(AppError) as refused:
        request(member, clerk, points)

    assert refused.value.code == "insufficient_points"
    assert refused.value.details == {"balance": 300, "requested": points}
    assert not Adjustment.objects.exists()
    assert balance(member) == 300
    assert_ledger_consistent()


def test_taking_the_whole_balance_leaves_zero(member, clerk):
    request(member, clerk, -300)

    assert balance(member) == 0
    assert_ledger_consistent()


def test_approval_is_refused_when_the_balance_fell_meanwhile(store, clerk, manager):
    earn(store=store, phone=PHONE, amount="2000.00")
    member = Member.objects.get(phone=PHONE)
    pending = request(member, clerk, -1500)
    request(member, clerk, -600)  # small: applied at once, 1400 left

    with pytest.raises(AppError) as refused:
        adjustment_approve(adjustment_id=pending.pk, staff_user=manager)

    assert refused.value.code == "insufficient_points"
    pending.refresh_from_db()
    assert pending.status == Adjustment.Status.PENDING
    assert balance(member) == 1400
    assert_ledger_consistent()


def test_asking_needs_the_adjust_permission(member):
    viewer = staff_member("+8613900000005", "view_member")

    with pytest.raises(AppError) as refused:
        request(member, viewer, 10)

    assert refused.value.code == "permission_denied"
    assert not Adjustment.objects.exists()
    assert balance(member) == 300


def test_approving_and_rejecting_others_need_the_approve_permission(member, clerk):
    other_clerk = staff_member("+8613900000004", *CLERK_PERMISSIONS)
    pending = request(member, clerk, 5000)

    for decide in (adjustment_approve, adjustment_reject):
        with pytest.raises(AppError) as refused:
            decide(adjustment_id=pending.pk, staff_user=other_clerk)
        assert refused.value.code == "permission_denied"

    pending.refresh_from_db()
    assert pending.status == Adjustment.Status.PENDING
    assert balance(member) == 300


def test_an_inactive_staff_member_cannot_adjust(member, clerk):
    clerk.is_active = False
    clerk.save()

    with pytest.raises(AppError) as refused:
        request(member, clerk, 10)

    assert refused.value.code == "permission_denied"


@pytest.mark.parametrize(
    "points, reason, note",
    [
        (0, "goodwill", "Nothing"),
        (True, "goodwill", "A bool is not a number of points"),
        (10, "bonus", "Not a reason of the list"),
        (10, "goodwill", "   "),
        (10, "goodwill", "x" * 501),
        # The limit holds for every caller, not only the admin form.
        (MAX_ADJUSTMENT + 1, "goodwill", "A typing mistake"),
        (-(MAX_ADJUSTMENT + 1), "goodwill", "A typing mistake"),
    ],
)
def test_a_request_outside_the_rules_is_refused(member, clerk, points, reason, note):
    with pytest.raises(AppError) as refused:
        request(member, clerk, points, reason=reason, note=note)

    assert refused.value.code == "validation_error"
    assert not Adjustment.objects.exists()
    assert balance(member) == 300


def test_an_unknown_adjustment_is_not_found(clerk, manager):
    with pytest.raises(AppError) as refused:
        adjustment_approve(adjustment_id=999999, staff_user=manager)

    assert refused.value.code == "not_found"


@pytest.mark.django_db(transaction=True)
def test_two_managers_approving_at_once_apply_the_adjustment_once(store):
    earn(store=store, phone=PHONE, amount="300.00")
    member = Member.objects.get(phone=PHONE)
    clerk = staff_member("+8613900000001", *CLERK_PERMISSIONS)
    managers = [staff_member(f"+861390000002{i}", *MANAGER_PERMISSIONS) for i in range(4)]
    pending = request(member, clerk, 5000)

    results = run_together(
        [
            lambda manager=manager: adjustment_approve(adjustment_id=pending.pk, staff_user=manager)
            for manager in managers
        ]
    )

    assert sum(not isinstance(result, AppError) for result in results) == 1
    assert {result.code for result in results if isinstance(result, AppError)} == {"invalid_state"}
    assert balance(member) == 5300
    assert len(adjust_entries(member)) == 1
    assert_ledger_consistent()


# --- The threshold bounds what one staff member moves alone for a member in a day ---------


def test_twenty_small_adjustments_by_one_clerk_wait_once_they_pass_the_threshold(store, clerk):
    """The reported attack: 20 adjustments of +1,000 by one clerk, the threshold at its
    default of 1,000. Only the first applies; the others wait for a second staff member."""
    earn(store=store, phone=PHONE, amount="300.00")
    member = Member.objects.get(phone=PHONE)

    adjustments = [request(member, clerk, 1000) for _ in range(20)]

    assert [a.status for a in adjustments] == [Adjustment.Status.APPLIED] + [
        Adjustment.Status.PENDING
    ] * 19
    assert {a.approval_reason for a in adjustments[1:]} == {Adjustment.ApprovalReason.DAY_TOTAL}
    assert adjustments[0].approval_reason == ""
    assert balance(member) == 300 + THRESHOLD
    assert len(adjust_entries(member)) == 1
    assert_ledger_consistent()


def test_small_adjustments_apply_until_their_sum_would_pass_the_threshold(member, clerk):
    assert request(member, clerk, 600).status == Adjustment.Status.APPLIED
    assert request(member, clerk, 400).status == Adjustment.Status.APPLIED  # 1000: at it

    waiting = request(member, clerk, 1)

    assert waiting.status == Adjustment.Status.PENDING
    assert waiting.approval_reason == Adjustment.ApprovalReason.DAY_TOTAL
    assert balance(member) == 1300


def test_removals_count_by_their_size_so_giving_and_taking_back_cannot_go_on(member, clerk):
    """With a net total +1000 and -1000 would cost nothing, and one clerk could move
    any number of points alone (renewing points about to expire, for one)."""
    request(member, clerk, 1000)

    taken_back = request(member, clerk, -1000, reason="correction", note="Given by mistake")

    assert taken_back.status == Adjustment.Status.PENDING
    assert taken_back.approval_reason == Adjustment.ApprovalReason.DAY_TOTAL
    assert balance(member) == 1300


def test_a_large_adjustment_waits_as_large_and_adds_nothing_to_the_day_until_decided(
    member, clerk, manager
):
    large = request(member, clerk, 5000)
    assert large.approval_reason == Adjustment.ApprovalReason.LARGE
    # Waiting, it moved nothing: the clerk may still adjust alone up to the threshold.
    assert request(member, clerk, THRESHOLD).status == Adjustment.Status.APPLIED

    adjustment_approve(adjustment_id=large.pk, staff_user=manager)

    # Approved by a second staff member, it was not moved alone either.
    assert balance(member) == 300 + THRESHOLD + 5000
    assert request(member, clerk, 1).status == Adjustment.Status.PENDING


def test_approved_and_withdrawn_adjustments_do_not_count_for_the_day(member, clerk, manager):
    approved = request(member, clerk, 5000)
    adjustment_approve(adjustment_id=approved.pk, staff_user=manager)
    withdrawn = request(member, clerk, 5000)
    adjustment_reject(adjustment_id=withdrawn.pk, staff_user=clerk)

    assert request(member, clerk, THRESHOLD).status == Adjustment.Status.APPLIED


def test_another_clerks_adjustments_are_counted_separately(member, clerk):
    other_clerk = staff_member("+8613900000004", *CLERK_PERMISSIONS)
    request(member, clerk, THRESHOLD)

    assert request(member, other_clerk, THRESHOLD).status == Adjustment.Status.APPLIED
    assert request(member, clerk, 1).status == Adjustment.Status.PENDING
    assert balance(member) == 300 + 2 * THRESHOLD


def test_adjustments_of_another_member_are_counted_separately(store, member, clerk):
    earn(store=store, phone="+8613800138001", amount="300.00")
    other_member = Member.objects.get(phone="+8613800138001")
    request(member, clerk, THRESHOLD)

    assert request(other_member, clerk, THRESHOLD).status == Adjustment.Status.APPLIED


def test_the_day_is_the_merchants_and_yesterdays_adjustments_do_not_count(member, clerk):
    # 23:50 and 00:10 in Shanghai are the same day in UTC (15:50 and 16:10).
    with time_machine.travel(datetime(2026, 3, 10, 23, 50, tzinfo=SHANGHAI), tick=False):
        request(member, clerk, THRESHOLD)
        assert request(member, clerk, 1).status == Adjustment.Status.PENDING

    with time_machine.travel(datetime(2026, 3, 11, 0, 10, tzinfo=SHANGHAI), tick=False):
        today = request(member, clerk, THRESHOLD)

    assert today.status == Adjustment.Status.APPLIED
    assert balance(member) == 300 + 2 * THRESHOLD


@pytest.mark.django_db(transaction=True)
def test_a_clerks_adjustments_sent_at_once_cannot_all_slip_under_the_threshold(store):
    earn(store=store, phone=PHONE, amount="300.00")
    member = Member.objects.get(phone=PHONE)
    clerk = staff_member("+8613900000001", *CLERK_PERMISSIONS)

    results = run_together([lambda: request(member, clerk, 400)] * 6)

    # 400 + 400 fits in 1000; a third would make 1200.
    statuses = sorted(result.status for result in results)
    assert statuses == [Adjustment.Status.APPLIED] * 2 + [Adjustment.Status.PENDING] * 4
    assert balance(member) == 300 + 800
    assert_ledger_consistent()
