"""Points for events other than purchases, through the services: each rule's limit,
budget and the daily cap at their edges, the check-in streak across local days, the
sign-up bonus once per phone, the birthday rules and the birthday job at the edges of
the merchant's day."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.models import User
from core.errors import AppError
from loyalty.models import EntryKind, EventRule, Member, MemberEvent, Program
from loyalty.services.birthdays import birthday_bonuses_pay
from loyalty.services.events import EventReport, checkin_record, event_record, signup_bonus_pay
from loyalty.services.members import member_link_user
from loyalty.services.profile import Birthday, profile_update
from tests.factories import MemberFactory
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the merchant's time zone, TIME_ZONE's default
Outcome = MemberEvent.Outcome


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def rule_on(event_type: str, **fields) -> EventRule:
    rule, _created = EventRule.objects.update_or_create(
        event_type=event_type,
        defaults={"name_en": event_type, "name_zh": event_type, "is_active": True, **fields},
    )
    return rule


def report(event_type: str = "review_written", external_id: str = "R-1") -> EventReport:
    return EventReport(
        event_type=event_type, external_id=external_id, occurred_at=local(2026, 3, 2)
    )


def balance(member: Member) -> int:
    member.refresh_from_db()
    return member.balance


def cap_bonus_points_a_day(points: int) -> None:
    program = Program.current()
    program.bonus_daily_cap = points
    program.save()


@pytest.fixture
def member(db):
    return MemberFactory()


def reviews(member: Member, count: int, *, prefix: str = "R") -> list[MemberEvent]:
    return [
        event_record(member_id=member.pk, report=report(external_id=f"{prefix}-{n}"))[0]
        for n in range(count)
    ]


class TestOneEventPaysOnce:
    def test_a_custom_event_pays_its_points_as_an_event_entry(self, member):
        rule_on("review_written", points=30)

        event, new = event_record(member_id=member.pk, report=report())

        assert new and event.points == 30 and event.outcome == Outcome.PAID
        assert event.entry.kind == EntryKind.EVENT and event.entry.points == 30
        assert balance(member) == 30
        assert_ledger_consistent()

    def test_the_same_event_again_answers_the_first_and_pays_nothing(self, member):
        rule_on("review_written", points=30)
        first, _new = event_record(member_id=member.pk, report=report())

        again, new = event_record(member_id=member.pk, report=report())

        assert not new and again.pk == first.pk
        assert balance(member) == 30

    def test_a_rule_switched_off_or_out_of_its_dates_records_the_event_with_nothing(self, member):
        with time_machine.travel(local(2026, 3, 2, 12), tick=False):
            rule_on("review_written", points=30, is_active=False)
            off, _new = event_record(member_id=member.pk, report=report(external_id="1"))
            rule_on("review_written", points=30, starts_at=local(2026, 3, 3))
            early, _new = event_record(member_id=member.pk, report=report(external_id="2"))
            rule_on("review_written", points=30, starts_at=None, ends_at=local(2026, 3, 2, 12))
            ended, _new = event_record(member_id=member.pk, report=report(external_id="3"))

        assert [e.outcome for e in (off, early, ended)] == [Outcome.NOT_RUNNING] * 3
        assert [e.points for e in (off, early, ended)] == [0, 0, 0]
        assert balance(member) == 0
        assert_ledger_consistent()


class TestLimits:
    @pytest.mark.parametrize(
        "period,later",
        [
            ("day", timedelta(days=1)),
            ("week", timedelta(days=7)),
            ("month", timedelta(days=31)),
        ],
    )
    def test_a_limit_pays_up_to_its_count_in_the_period_and_again_in_the_next(
        self, member, period, later
    ):
        rule_on("review_written", points=10, limit_per_member=2, limit_period=period)
        # Monday 2 March 2026, local: the first day of a week and of no month boundary.
        with time_machine.travel(local(2026, 3, 2, 9), tick=False):
            paid = reviews(member, 3)
        with time_machine.travel(local(2026, 3, 2, 9) + later, tick=False):
            next_period = reviews(member, 1, prefix="N")

        assert [e.points for e in paid] == [10, 10, 0]
        assert paid[2].outcome == Outcome.LIMIT_REACHED
        assert next_period[0].points == 10
        assert balance(member) == 30

    def test_a_day_ends_at_the_merchants_midnight_not_utcs(self, member):
        rule_on("review_written", points=10, limit_per_member=1, limit_period="day")
        with time_machine.travel(local(2026, 3, 2, 23, 59), tick=False):
            before_midnight = reviews(member, 1)
        # 00:01 in Shanghai is still 2 March in UTC.
        with time_machine.travel(local(2026, 3, 3, 0, 1), tick=False):
            after_midnight = reviews(member, 1, prefix="N")

        assert before_midnight[0].points == after_midnight[0].points == 10

    def test_a_lifetime_limit_never_pays_again(self, member):
        rule_on("app_installed", points=50, limit_per_member=1, limit_period="program")
        first = event_record(member_id=member.pk, report=report("app_installed", "phone-A"))[0]
        with time_machine.travel(local(2029, 1, 1), tick=False):
            years_later = event_record(
                member_id=member.pk, report=report("app_installed", "phone-B")
            )[0]

        assert (first.points, years_later.points) == (50, 0)
        assert years_later.outcome == Outcome.LIMIT_REACHED

    def test_an_event_that_paid_nothing_does_not_use_up_the_limit(self, member):
        rule = rule_on("review_written", points=10, limit_per_member=1, is_active=False)
        event_record(member_id=member.pk, report=report(external_id="off"))
        rule.is_active = True
        rule.save()

        assert reviews(member, 1)[0].points == 10


class TestBudget:
    def test_the_budget_pays_while_the_points_fit_and_then_nothing(self, member):
        rule = rule_on("review_written", points=40, budget_points=100)

        paid = reviews(member, 3)

        assert [e.points for e in paid] == [40, 40, 0]
        assert paid[2].outcome == Outcome.BUDGET_SPENT
        rule.refresh_from_db()
        assert rule.points_awarded == 80

    def test_a_budget_spent_to_the_last_point(self, member):
        rule = rule_on("review_written", points=50, budget_points=100)

        paid = reviews(member, 3)

        assert [e.points for e in paid] == [50, 50, 0]
        rule.refresh_from_db()
        assert rule.points_awarded == rule.budget_points


class TestDailyCap:
    def test_the_cap_counts_every_event_and_pays_what_is_left_of_it(self, member):
        cap_bonus_points_a_day(100)
        rule_on("review_written", points=60)
        rule_on("app_installed", points=60)
        with time_machine.travel(local(2026, 3, 2, 10), tick=False):
            review = event_record(member_id=member.pk, report=report())[0]
            installed = event_record(member_id=member.pk, report=report("app_installed", "A"))[0]
            third = event_record(member_id=member.pk, report=report(external_id="R-2"))[0]
        with time_machine.travel(local(2026, 3, 3, 10), tick=False):
            tomorrow = event_record(member_id=member.pk, report=report(external_id="R-3"))[0]

        assert (review.points, review.outcome) == (60, Outcome.PAID)
        assert (installed.points, installed.outcome) == (40, Outcome.CAPPED)
        assert (third.points, third.outcome) == (0, Outcome.DAILY_CAP)
        assert tomorrow.points == 60
        assert balance(member) == 160

    def test_purchases_and_staff_adjustments_do_not_count_toward_the_cap(self, member, store):
        from tests.factories import earn

        cap_bonus_points_a_day(100)
        rule_on("review_written", points=100)
        earn(store=store, phone=member.phone, amount="500.00")

        assert reviews(member, 1)[0].points == 100


class TestCheckIn:
    def test_seven_days_running_earn_the_streak_table_and_the_eighth_starts_a_new_round(
        self, member
    ):
        rule_on("checkin", points=5, streak_points=[5, 5, 10, 5, 5, 5, 50], limit_per_member=1)
        days = []
        for day in range(8):
            with time_machine.travel(local(2026, 3, 1, 8) + timedelta(days=day), tick=False):
                days.append(checkin_record(member_id=member.pk, at=datetime.now(SHANGHAI))[0])

        assert [e.streak for e in days] == [1, 2, 3, 4, 5, 6, 7, 8]
        assert [e.points for e in days] == [5, 5, 10, 5, 5, 5, 50, 5]
        assert balance(member) == 90

    def test_a_missed_local_day_breaks_the_streak(self, member):
        rule_on("checkin", points=5, streak_points=[5, 10])
        streaks = []
        # 23:30 on the 1st, then 00:10 on the 2nd (one day later, minutes apart), then
        # the 4th: the 3rd was missed.
        for moment in (local(2026, 3, 1, 23, 30), local(2026, 3, 2, 0, 10), local(2026, 3, 4, 9)):
            with time_machine.travel(moment, tick=False):
                streaks.append(checkin_record(member_id=member.pk, at=moment)[0].streak)

        assert streaks == [1, 2, 1]

    def test_one_check_in_a_day_the_second_answers_the_first(self, member):
        rule_on("checkin", points=5)
        with time_machine.travel(local(2026, 3, 1, 8), tick=False):
            first, _new = checkin_record(member_id=member.pk, at=local(2026, 3, 1, 8))
        with time_machine.travel(local(2026, 3, 1, 23, 59), tick=False):
            again, new = checkin_record(member_id=member.pk, at=local(2026, 3, 1, 23, 59))

        assert not new and again.pk == first.pk
        assert balance(member) == 5

    def test_the_history_says_which_day_of_the_streak(self, member):
        from loyalty.history import entries_described

        rule_on("checkin", points=5, name_en="Daily check-in")
        checkin_record(member_id=member.pk, at=datetime.now(SHANGHAI))
        entry = member.entries.get()
        row = {
            "kind": entry.kind,
            "reference": entry.reference,
            "reason": entry.reason,
            "store": None,
            "language": "en",
        }

        assert entries_described([row])[0]["description"] == "Daily check-in, day 1 of the streak"


class TestSignUp:
    def test_the_sign_up_bonus_is_paid_once_per_phone_even_after_erasure(self, member):
        from loyalty.services.erasure import customer_erase

        rule_on("signup", points=100)
        phone = member.phone
        first = signup_bonus_pay(member=member, at=datetime.now(SHANGHAI))
        customer_erase(member_id=member.pk)
        again = Member.objects.create(phone=phone)

        second = signup_bonus_pay(member=again, at=datetime.now(SHANGHAI))

        assert first.points == 100
        assert (second.points, second.outcome) == (0, Outcome.ALREADY_PAID)
        assert balance(again) == 0

    def test_a_sign_up_while_the_bonus_is_off_leaves_a_later_sign_up_of_the_phone_free(
        self, member
    ):
        rule_on("signup", points=100, is_active=False)

        assert signup_bonus_pay(member=member, at=datetime.now(SHANGHAI)).points == 0
        assert not member.events.get().entry


@pytest.fixture
def customer(db):
    user = User.objects.create_user(phone="+8613800138011", password="customer-2026")
    member_link_user(user=user)
    return user


class TestBirthdayAndProfile:
    def test_a_birthday_can_be_changed_a_year_after_it_was_set_not_before(self, customer):
        with time_machine.travel(local(2026, 1, 10), tick=False):
            profile_update(user=customer, birthday=Birthday(month=8, day=1))
        with time_machine.travel(local(2027, 1, 9), tick=False), pytest.raises(AppError) as error:
            profile_update(user=customer, birthday=Birthday(month=9, day=1))
        with time_machine.travel(local(2027, 1, 10), tick=False):
            changed = profile_update(user=customer, birthday=Birthday(month=9, day=1))

        assert error.value.code == "birthday_locked"
        assert error.value.details["changeable_from"].startswith("2027-01-10")
        assert (changed.birthday_month, changed.birthday_day) == (9, 1)

    def test_sending_the_same_birthday_again_is_no_change(self, customer):
        profile_update(user=customer, birthday=Birthday(month=8, day=1))

        profile_update(user=customer, birthday=Birthday(month=8, day=1))

    @pytest.mark.parametrize(
        "birthday",
        [Birthday(2, 30), Birthday(13, 1), Birthday(4, 31), Birthday(5, 1, year=2099)],
        ids=["30 February", "month 13", "31 April", "in the future"],
    )
    def test_a_day_that_does_not_exist_is_refused(self, customer, birthday):
        with pytest.raises(AppError) as error:
            profile_update(user=customer, birthday=birthday)

        assert error.value.code == "validation_error" and "birthday" in error.value.details
        customer.refresh_from_db()
        assert customer.birthday_month is None

    @pytest.mark.parametrize(
        "today,unpaid",
        [(local(2026, 7, 2, 12), 2026), (local(2026, 7, 1, 12), None), (local(2026, 7, 31), 2026)],
        ids=["29 days before", "30 days before", "on the day"],
    )
    def test_a_birthday_set_within_30_days_before_it_pays_nothing_that_year(
        self, customer, today, unpaid
    ):
        with time_machine.travel(today, tick=False):
            saved = profile_update(user=customer, birthday=Birthday(month=7, day=31))

        assert saved.birthday_unpaid_year == unpaid

    def test_a_complete_profile_pays_once(self, customer):
        rule_on("profile_completed", points=50)
        profile_update(user=customer, name="王小明")
        member = customer.member
        assert balance(member) == 0
        with time_machine.travel(local(2027, 6, 1), tick=False):
            profile_update(user=customer, birthday=Birthday(month=3, day=4))
        with time_machine.travel(local(2028, 6, 1), tick=False):
            profile_update(user=customer, name="王明", birthday=Birthday(month=3, day=5))

        assert balance(member) == 50


def born_on(month: int, day: int, *, phone: str, unpaid_year=None) -> Member:
    user = User.objects.create_user(phone=phone, password="customer-2026")
    User.objects.filter(pk=user.pk).update(
        birthday_month=month, birthday_day=day, birthday_unpaid_year=unpaid_year
    )
    return member_link_user(user=user)


class TestBirthdayJob:
    def test_the_job_pays_the_local_days_birthdays_across_utc_midnight(self, db):
        rule_on("birthday", points=200)
        march_14 = born_on(3, 14, phone="+8613800138021")
        march_15 = born_on(3, 15, phone="+8613800138022")

        # 00:30 on 15 March in Shanghai is 16:30 on the 14th in UTC.
        run = birthday_bonuses_pay(at=local(2026, 3, 15, 0, 30))

        assert (run.day.isoformat(), run.paid, run.points) == ("2026-03-15", 1, 200)
        assert (balance(march_14), balance(march_15)) == (0, 200)

    def test_a_second_run_the_same_day_pays_nobody_twice(self, db):
        rule_on("birthday", points=200)
        members = [born_on(6, 1, phone=f"+86138001380{n:02d}") for n in range(30, 35)]

        first = birthday_bonuses_pay(at=local(2026, 6, 1, 0, 20), chunk_size=2)
        second = birthday_bonuses_pay(at=local(2026, 6, 1, 1, 20), chunk_size=2)

        assert (first.members, first.paid) == (5, 5)
        assert (second.members, second.paid) == (5, 0)
        assert [balance(m) for m in members] == [200] * 5
        assert_ledger_consistent()

    def test_it_pays_again_the_next_year(self, db):
        rule_on("birthday", points=200)
        member = born_on(6, 1, phone="+8613800138040")

        birthday_bonuses_pay(at=local(2026, 6, 1, 9))
        birthday_bonuses_pay(at=local(2027, 6, 1, 9))

        assert balance(member) == 400

    @pytest.mark.parametrize(
        "moment,paid",
        [
            (local(2027, 2, 28, 9), True),
            (local(2028, 2, 28, 9), False),
            (local(2028, 2, 29, 9), True),
            (local(2027, 3, 1, 9), False),
        ],
        ids=["28 Feb of a common year", "28 Feb of a leap year", "29 Feb", "1 March"],
    )
    def test_29_february_is_kept_on_the_28th_in_common_years(self, db, moment, paid):
        rule_on("birthday", points=200)
        leapling = born_on(2, 29, phone="+8613800138050")

        birthday_bonuses_pay(at=moment)

        assert balance(leapling) == (200 if paid else 0)

    def test_a_birthday_set_late_is_recorded_with_nothing_that_year_only(self, db):
        rule_on("birthday", points=200)
        member = born_on(6, 1, phone="+8613800138060", unpaid_year=2026)

        birthday_bonuses_pay(at=local(2026, 6, 1, 9))
        birthday_bonuses_pay(at=local(2027, 6, 1, 9))

        outcomes = list(member.events.order_by("external_id").values_list("outcome", "points"))
        assert outcomes == [(Outcome.BIRTHDAY_SET_LATE, 0), (Outcome.PAID, 200)]

    def test_erased_customers_get_nothing(self, db):
        from loyalty.services.erasure import customer_erase

        rule_on("birthday", points=200)
        member = born_on(6, 1, phone="+8613800138070")
        customer_erase(member_id=member.pk)

        assert birthday_bonuses_pay(at=local(2026, 6, 1, 9)).members == 0
