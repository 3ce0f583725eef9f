"""The benchmark's own views, beside the application's.

The no-op view gives L_http. The floor views give each path's ceiling on this stack:
the same server, middleware and database answering with only the SQL the path must
run (and, for a customer's read, the check of the access token), building nothing.
No implementation of a path through this stack can be faster than its floor.
"""

import itertools
import os
import random
from decimal import Decimal

from django.db import connection
from django.http import HttpResponse
from django.urls import path
from rest_framework_simplejwt.tokens import AccessToken

from bench.seed import phone_of
from config.urls import urlpatterns as app_urlpatterns
from core.api.pagination import NewestFirstRows
from loyalty.models import Store
from loyalty.selectors import BALANCE_AND_EXPIRING_OF_USER, ENTRIES_OF_USER, LARGEST_ID
from loyalty.services.purchases import EARN_STATEMENT, earn_parameters

BODY = b'{"ok": true}'
# A page as the history view asks for it: one row more than it shows, to know of a next.
PAGE_ROWS = NewestFirstRows.page_size + 1
FLOOR_AMOUNT = Decimal("123.45")


def noop(request):
    """Through every middleware, to no database: what a request costs before any work."""
    return answered()


def earn_floor(request):
    """EARN_STATEMENT for a new order of a random member: the earn without reading,
    checking or answering the request."""
    with connection.cursor() as cursor:
        cursor.execute(EARN_STATEMENT, next_earn())
    return answered()


def balance_floor(request):
    """The token's signature and expiry checked, then the balance read's query."""
    with connection.cursor() as cursor:
        cursor.execute(BALANCE_AND_EXPIRING_OF_USER, [user_of_token(request)])
        cursor.fetchall()
    return answered()


def history_floor(request):
    """The token's signature and expiry checked, then the first history page's query."""
    with connection.cursor() as cursor:
        cursor.execute(
            ENTRIES_OF_USER,
            {"user": user_of_token(request), "before": LARGEST_ID, "limit": PAGE_ROWS},
        )
        cursor.fetchall()
    return answered()


def answered():
    return HttpResponse(BODY, content_type="application/json")


def user_of_token(request) -> int:
    raw_token = request.headers["Authorization"].removeprefix("Bearer ")
    return int(AccessToken(raw_token)["user_id"])


_orders = itertools.count()
_seeded: dict = {}


def next_earn() -> dict:
    """Parameters as the earn service writes them, for a phone the seed wrote."""
    if not _seeded:
        _seeded.update(
            store=Store.objects.first(),
            # hot_paths.py tells the server how many members the seed wrote.
            members=int(os.environ["BENCH_MEMBERS"]),
        )
    return earn_parameters(
        store=_seeded["store"],
        phone=phone_of(random.randint(1, _seeded["members"])),
        order_id=f"F{os.getpid()}-{next(_orders)}",
        amount=FLOOR_AMOUNT,
    )


urlpatterns = [
    path("bench/noop", noop),
    path("bench/floor/earn", earn_floor),
    path("bench/floor/balance", balance_floor),
    path("bench/floor/history", history_floor),
    *app_urlpatterns,
]
