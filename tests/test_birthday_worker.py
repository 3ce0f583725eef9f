"""The birthday job in a real Celery worker against Redis and the test database, as
beat sends it every hour: run twice on one day, it pays each customer born on that
day once, in chunks of members, and nobody else."""

import re
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from loyalty.models import EventRule, Member, MemberEvent
from loyalty.services.members import member_link_user
from tests.invariants import assert_ledger_consistent
from tests.processes import start_worker, stop_worker

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    # conftest makes tasks eager; send_task goes through the broker all the same, as wanted here.
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]

TASK = "loyalty.tasks.birthday_bonuses_pay"
BORN_TODAY = 5
BORN_TOMORROW = 2
# Chunks of two members: the five born today take three of them.
CHUNK_SIZE = 2
POINTS = 200
SUCCEEDED = re.compile(rf"{TASK}\[[^]]+\] succeeded in [0-9.]+s: (\d+)$", re.MULTILINE)


@pytest.fixture
def worker(transactional_db, tmp_path):
    """One Celery worker on a queue of its own, as tests/test_expiry_worker.py starts it."""
    worker = start_worker(tmp_path, BIRTHDAY_CHUNK_SIZE=str(CHUNK_SIZE))
    try:
        yield worker
    finally:
        stop_worker(worker)


def customers_born_on(day, count: int, first: int) -> list[Member]:
    members = []
    for n in range(first, first + count):
        user = User.objects.create_user(
            phone=f"+86138{n:08d}", birthday_month=day.month, birthday_day=day.day
        )
        members.append(member_link_user(user=user))
    return members


def test_the_worker_pays_each_birthday_of_the_day_once_however_often_the_job_runs(worker):
    EventRule.objects.update_or_create(
        event_type=EventRule.BuiltIn.BIRTHDAY,
        defaults={"name_en": "Birthday", "name_zh": "生日", "points": POINTS, "is_active": True},
    )
    today = timezone.localdate()
    born_today = customers_born_on(today, BORN_TODAY, first=1)
    customers_born_on(today + timedelta(days=1), BORN_TOMORROW, first=100)

    worker.send(TASK)
    worker.wait_until(lambda: worker.count("succeeded") == 1, "the first run never finished")
    worker.send(TASK)
    worker.wait_until(lambda: worker.count("succeeded") == 2, "the second run never finished")

    # Each run answers how many it paid: everyone the first time, nobody the second.
    assert SUCCEEDED.findall(worker.output()) == [str(BORN_TODAY), "0"], worker.output()
    paid = MemberEvent.objects.filter(event_type=EventRule.BuiltIn.BIRTHDAY, points=POINTS)
    assert sorted(paid.values_list("member_id", flat=True)) == [m.pk for m in born_today]
    assert set(paid.values_list("external_id", "local_day")) == {(str(today.year), today)}
    assert set(Member.objects.filter(balance__gt=0).values_list("pk", flat=True)) == {
        m.pk for m in born_today
    }
    assert Member.objects.aggregate(total=Sum("balance"))["total"] == BORN_TODAY * POINTS
    assert_ledger_consistent()
