"""The manager's dashboard at /admin/dashboard/: what the points outstanding are worth,
how points moved month by month, what expires soon, and the last ledger check.

A handful of aggregate queries, the same number whatever the data size; the chart is
SVG drawn on the server, so the page needs no JavaScript and works offline."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.models import EntryKind, Program
from loyalty.selectors import (
    ledger_check_latest,
    points_expiring,
    points_moved_per_month,
    points_moved_since,
    points_outstanding,
)

# Whoever may read the ledger's health may read its totals. A permission of the dashboard's
# own would be a Meta permission on a model, with its migration.
DASHBOARD_PERMISSION = "loyalty.view_ledgercheckrun"
MONTHS_SHOWN = 12
EXPIRY_PERIODS = [timedelta(days=30), timedelta(days=90)]
# The check runs nightly: older than a day and a half means the schedule is not running.
CHECK_STALE_AFTER = timedelta(hours=36)
CENT = Decimal("0.01")
CLOSED_MONTHS_CACHE_SECONDS = 6 * 60 * 60


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    kinds: tuple[str, ...]
    # Debits are negative in the ledger; the chart shows how many points went out.
    sign: int
    charted: bool = True


SERIES = (
    Series(
        "earned",
        _("Earned on purchases, net of refunds"),
        (EntryKind.EARN, EntryKind.EARN_REVERSAL),
        1,
    ),
    Series("bonus", _("Bonus points from events"), (EntryKind.EVENT,), 1),
    Series(
        "redeemed",
        _("Redeemed, net of releases and cancellations"),
        (
            EntryKind.REDEEM,
            EntryKind.REWARD,
            EntryKind.REDEEM_RELEASE,
            EntryKind.REWARD_CANCEL,
        ),
        -1,
    ),
    Series("expired", _("Expired"), (EntryKind.EXPIRE,), -1),
    Series("adjusted", _("Adjusted by staff"), (EntryKind.ADJUST,), 1, charted=False),
)
CHARTED = [series for series in SERIES if series.charted]

# The chart's geometry, in SVG user units.
CHART_WIDTH, CHART_HEIGHT = 760, 260
PLOT_LEFT, PLOT_TOP, PLOT_BOTTOM = 70, 10, 225
GROUP_FILL = 0.8


@dataclass(frozen=True)
class Bar:
    series: str
    label: str
    month: datetime
    points: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


def points_liability_view(request):
    """Staff only (the admin's login wraps it in the URLconf), and only with the permission."""
    if not request.user.has_perm(DASHBOARD_PERMISSION):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": _("Points liability"),
        **points_liability(now=timezone.now()),
    }
    return TemplateResponse(request, "admin/loyalty/dashboard.html", context)


def points_liability(*, now: datetime) -> dict:
    program = Program.current()
    outstanding = points_outstanding()
    months = _months(now=now)
    expiring = points_expiring(now=now, within=EXPIRY_PERIODS)
    for period in expiring:
        period["days"] = period["within"].days
        period["value"] = _value(period["points"], program.redeem_rate)
    last_check = ledger_check_latest()
    return {
        "now": now,
        "currency": settings.CURRENCY,
        "redeem_rate": program.redeem_rate,
        "outstanding": {
            **outstanding,
            "value": _value(outstanding["points"], program.redeem_rate),
        },
        "series": SERIES,
        "charted_series": CHARTED,
        "months": months,
        "chart": _chart(months),
        "expiring": expiring,
        "last_check": last_check,
        "last_check_stale": last_check is not None
        and last_check.finished_at < now - CHECK_STALE_AFTER,
    }


def _value(points: int, redeem_rate: int) -> Decimal:
    """What the points are worth as a discount: `redeem_rate` points make 1.00."""
    return (Decimal(points) / Decimal(redeem_rate)).quantize(CENT, rounding=ROUND_HALF_UP)


def _month_starts(*, now: datetime) -> list[datetime]:
    """The first instants of the last MONTHS_SHOWN local months, oldest first, this one last."""
    local = timezone.localtime(now)
    zone = timezone.get_current_timezone()
    month_index = local.year * 12 + local.month - 1
    return [
        datetime(index // 12, index % 12 + 1, 1, tzinfo=zone)
        for index in range(month_index - MONTHS_SHOWN + 1, month_index + 1)
    ]


def _moved_per_month(starts: list[datetime]) -> dict[tuple[int, int, str], int]:
    """Points moved per (year, month, kind): the months gone by from the cache, this month
    from the ledger.

    The ledger is append-only and entries are dated when written, so a month that is over
    no longer changes: one query sums them all once per CLOSED_MONTHS_CACHE_SECONDS (which
    also bounds how long an entry committed just after midnight could be left out)."""
    this_month = starts[-1]
    key = f"loyalty:dashboard:months:{settings.TIME_ZONE}:{starts[0]:%Y-%m}:{this_month:%Y-%m}"
    moved = cache.get(key)
    if moved is None:
        moved = {}
        for row in points_moved_per_month(since=starts[0], until=this_month):
            month = timezone.localtime(row["month"])
            moved[(month.year, month.month, row["kind"])] = row["points"]
        cache.set(key, moved, CLOSED_MONTHS_CACHE_SECONDS)
    live = points_moved_since(since=this_month)
    return moved | {(this_month.year, this_month.month, kind): p for kind, p in live.items()}


def _months(*, now: datetime) -> list[dict]:
    starts = _month_starts(now=now)
    moved = _moved_per_month(starts)
    months = []
    for start in starts:
        month = {"start": start}
        for series in SERIES:
            month[series.key] = series.sign * sum(
                moved.get((start.year, start.month, kind), 0) for kind in series.kinds
            )
        months.append(month)
    return months


def _chart(months: list[dict]) -> dict:
    top = _nice_ceiling(max(max(month[s.key] for s in CHARTED) for month in months))
    plot_height = PLOT_BOTTOM - PLOT_TOP
    group_width = (CHART_WIDTH - PLOT_LEFT) / len(months)
    bar_width = group_width * GROUP_FILL / len(CHARTED)
    bars, labels = [], []
    for index, month in enumerate(months):
        group_left = PLOT_LEFT + index * group_width + group_width * (1 - GROUP_FILL) / 2
        for position, series in enumerate(CHARTED):
            # A month's net can dip below zero (more released than spent): drawn as none.
            height = max(month[series.key], 0) / top * plot_height
            bars.append(
                Bar(
                    series=series.key,
                    label=series.label,
                    month=month["start"],
                    points=month[series.key],
                    x=round(group_left + position * bar_width, 1),
                    y=round(PLOT_BOTTOM - height, 1),
                    width=round(bar_width - 1, 1),
                    height=round(height, 1),
                )
            )
        labels.append(
            {
                "month": month["start"],
                "x": round(PLOT_LEFT + (index + 0.5) * group_width, 1),
                "with_year": index == 0 or month["start"].month == 1,
            }
        )
    ticks = [
        Tick(value=value, y=round(PLOT_BOTTOM - value / top * plot_height, 1))
        for value in (0, top // 2, top)
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "plot_left": PLOT_LEFT,
        "plot_right": CHART_WIDTH,
        "bars": bars,
        "labels": labels,
        "label_y": PLOT_BOTTOM + 16,
        "year_y": PLOT_BOTTOM + 30,
        "ticks": ticks,
    }


def _nice_ceiling(value: int) -> int:
    """The smallest of 10, 20, 50, 100, 200, 500, … at or above `value`: round grid lines."""
    if value <= 10:
        return 10
    scale = 10 ** math.floor(math.log10(value))
    return next(step * scale for step in (1, 2, 5, 10) if value <= step * scale)
