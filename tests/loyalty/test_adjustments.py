"""Staff adjustments through the service: small ones apply at once, large ones wait
for a second staff member; nothing takes a balance below zero; each step needs its
own permission; and a refusal moves nothing."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from config.errors import AppError
from loyalty.models import Adjustment, LedgerEntry, Lot, Member, Program
from loyalty.services.adjustments import (
    adjustment_approve,
    adjustment_reject,
    adjustment_request,
)
from tests.admin import CLERK_PERMISSIONS, MANAGER_PERMISSIONS, staff_member
from tests.factories import earn
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
THRESHOLD = 1000  # the program's default


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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_managers_approving_at_once_apply_the_adjustment_once(store):
    earn(store=store, phone=PHONE, amount="300.00")
    member = Member.objects.get(phone=PHONE)
    clerk = staff_member("+8613900000001", *CLERK_PERMISSIONS)
    managers = [staff_member(f"+861390000002{i}", *MANAGER_PERMISSIONS) for i in range(4)]
    pending = request(member, clerk, 5000)

    barrier = threading.Barrier(len(managers))

    def approve_as(manager):
        try:
            barrier.wait()
            return adjustment_approve(adjustment_id=pending.pk, staff_user=manager)
        except AppError as refusal:
            return refusal
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(managers)) as pool:
        results = list(pool.map(approve_as, managers))

    assert sum(not isinstance(result, AppError) for result in results) == 1
    assert {result.code for result in results if isinstance(result, AppError)} == {"invalid_state"}
    assert balance(member) == 5300
    assert len(adjust_entries(member)) == 1
    assert_ledger_consistent()
