"""Expiry reminders: one SMS per member and expiry date, naming the points and the
last valid day in the merchant's time zone; never sent twice."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import translation

from accounts.models import SmsMessage
from loyalty.models import ExpiryReminder, LedgerEntry, Member, Program
from loyalty.services.points import Cause, credit, debit, member_lock
from loyalty.services.reminders import expiry_reminders_send
from tests.beat import beat_started_at
from tests.concurrency import run_together
from tests.factories import MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2027, 7, 28, 10, 0, tzinfo=SHANGHAI)
# Local midnights, as the policies make them: 1 August is the first day they are invalid.
AUGUST_1 = datetime(2027, 8, 1, tzinfo=SHANGHAI)
AUGUST_3 = datetime(2027, 8, 3, tzinfo=SHANGHAI)
SEPTEMBER_1 = datetime(2027, 9, 1, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def _merchant_in_shanghai(settings):
    settings.TIME_ZONE = "Asia/Shanghai"


def give(member, points, expires_at):
    with transaction.atomic():
        credit(
            member=member_lock(member.pk),
            kind=LedgerEntry.Kind.EARN,
            points=points,
            expires_at=expires_at,
            cause=Cause(reference="test"),
        )


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """Run the reminders and the on-commit tasks that deliver the texts."""

    def send(now=NOW):
        with django_capture_on_commit_callbacks(execute=True):
            return expiry_reminders_send(now=now)

    return send


@pytest.mark.django_db
def test_a_member_is_told_the_points_and_the_last_valid_day(send, sms_outbox):
    member = MemberFactory(phone="+8613800138000")
    give(member, 120, AUGUST_1)
    give(member, 30, AUGUST_1)
    give(member, 500, SEPTEMBER_1)  # beyond the 7 days: not yet
    give(member, 80, None)

    assert send() == 1

    assert sms_outbox == [
        {
            "to": "+8613800138000",
            "body": "150 of your points expire after 2027-07-31. Use them before then.",
        }
    ]
    reminder = ExpiryReminder.objects.get()
    assert (reminder.member, reminder.expires_at, reminder.points) == (member, AUGUST_1, 150)
    # Not worth sending once the points are gone.
    assert SmsMessage.objects.get().expires_at == AUGUST_1


@pytest.mark.services
@pytest.mark.django_db
def test_beat_sends_the_reminders_at_the_set_hour_and_only_then():
    morning = NOW.replace(hour=django_settings.EXPIRY_REMINDER_HOUR)

    with beat_started_at(morning - timedelta(hours=1)) as beat:
        give(MemberFactory(), 100, AUGUST_1)

        beat.run_until(morning - timedelta(seconds=1))
        assert not ExpiryReminder.objects.exists()

        beat.run_until(morning + timedelta(hours=1))
        assert beat.sent.count("loyalty.tasks.expiry_reminders_send") == 1

    reminder = ExpiryReminder.objects.get()
    assert (reminder.expires_at, reminder.points) == (AUGUST_1, 100)
    assert morning <= reminder.sent_at < morning + timedelta(minutes=1)  # beat woke each minute
    assert SmsMessage.objects.count() == 1


@pytest.mark.django_db
def test_each_expiry_date_gets_its_own_text_and_none_is_sent_twice(send, sms_outbox):
    member = MemberFactory()
    give(member, 100, AUGUST_1)
    give(member, 40, AUGUST_3)

    assert send() == 2
    assert send() == 0
    assert send(now=NOW + timedelta(days=1)) == 0

    assert sorted(text["body"][:6] for text in sms_outbox) == ["100 of", "40 of "]


@pytest.mark.django_db
def test_points_earned_later_for_a_date_already_reminded_do_not_bring_a_second_text(
    send, sms_outbox
):
    member = MemberFactory()
    give(member, 100, AUGUST_1)
    send()
    give(member, 50, AUGUST_1)

    assert send() == 0
    assert len(sms_outbox) == 1


@pytest.mark.django_db
def test_the_lead_time_is_the_programs(send):
    member = MemberFactory()
    give(member, 100, SEPTEMBER_1)
    Program.objects.update_or_create(pk=Program.SINGLETON_ID, defaults={"reminder_days": 40})

    assert send() == 1


@pytest.mark.django_db
def test_no_reminders_when_the_lead_time_is_zero_or_nothing_is_left(send):
    spent, erased = MemberFactory(), MemberFactory()
    give(spent, 100, AUGUST_1)
    give(erased, 100, AUGUST_1)
    Member.objects.filter(pk=erased.pk).update(phone=None)
    Program.objects.update_or_create(pk=Program.SINGLETON_ID, defaults={"reminder_days": 0})

    assert send() == 0

    Program.objects.filter(pk=Program.SINGLETON_ID).update(reminder_days=7)
    with transaction.atomic():
        debit(
            member=member_lock(spent.pk),
            kind=LedgerEntry.Kind.REDEEM,
            points=100,
            cause=Cause(reference="test"),
        )
    assert send() == 0
    # Points already expired are not announced either.
    assert send(now=AUGUST_1) == 0


@pytest.mark.django_db
def test_the_text_is_in_the_members_language_whatever_the_workers(send, sms_outbox):
    give(MemberFactory(language="zh-hans"), 100, AUGUST_1)

    with translation.override("en"):
        send()

    assert sms_outbox[0]["body"] == "您有100积分将于2027-07-31后过期，请尽快使用。"


@pytest.mark.django_db
def test_a_member_who_chose_no_language_gets_the_shops_default(send, sms_outbox, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    give(MemberFactory(), 100, AUGUST_1)
    give(MemberFactory(language="en"), 100, AUGUST_1)

    with translation.override("en"):
        send()

    assert sorted(text["body"] for text in sms_outbox) == [
        "100 of your points expire after 2027-07-31. Use them before then.",
        "您有100积分将于2027-07-31后过期，请尽快使用。",
    ]


@pytest.mark.django_db
def test_the_text_goes_out_from_a_task_once_the_claim_is_committed(
    django_capture_on_commit_callbacks, sms_outbox
):
    give(MemberFactory(), 100, AUGUST_1)

    with django_capture_on_commit_callbacks() as after_commit:
        expiry_reminders_send(now=NOW)
    assert sms_outbox == []

    for callback in after_commit:
        callback()
    assert len(sms_outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_runs_at_the_same_time_send_each_reminder_once(sms_outbox):
    members = [MemberFactory() for _ in range(30)]
    for member in members:
        give(member, 100, AUGUST_1)

    counts = run_together([lambda: expiry_reminders_send(now=NOW, chunk_size=7)] * 4)

    assert sum(counts) == 30
    assert SmsMessage.objects.count() == 30
    assert sorted(text["to"] for text in sms_outbox) == sorted(m.phone for m in members)
