"""The customer's own view of the program: a token sees only its own member.

These are the hottest reads, so they build their bodies from rows, not serializers;
MeOutput and TransactionOutput still describe them, and the schema tests hold the
bodies to that.
"""

from dataclasses import asdict
from functools import partial

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.response import Response

from core.api.fields import local_iso
from core.api.idempotency import replay_status, respond_once
from core.api.pagination import NewestFirstCursor, NewestFirstRows
from core.api.views import CustomerAPIView
from core.errors import AppError, error_responses
from loyalty import selectors
from loyalty.history import entries_described
from loyalty.models import MemberEvent
from loyalty.services.events import checkin_record
from loyalty.services.members import member_link_user
from loyalty.services.profile import birthday_changeable_from, birthday_of, profile_update

from . import serializers as s
from .views import IDEMPOTENCY_PARAMETER


class MeView(CustomerAPIView):
    @extend_schema(
        operation_id="me",
        summary="The customer's balance, the points that will expire, and the promotions on",
        responses={200: s.MeOutput, **error_responses(401, 403)},
        examples=[
            OpenApiExample(
                "Me",
                response_only=True,
                value={
                    "phone": "+8613800138000",
                    "balance": 1250,
                    "expiring": [{"points": 300, "expires_at": "2027-08-01T00:00:00+08:00"}],
                    "promotions": [
                        {
                            "name": "Double points on weekends",
                            "kind": "multiplier",
                            "multiplier": "2.00",
                            "bonus_points": None,
                            "starts_at": None,
                            "ends_at": "2026-12-31T00:00:00+08:00",
                            "days": [6, 7],
                            "hours_from": None,
                            "hours_until": None,
                        }
                    ],
                },
            )
        ],
        tags=["customer"],
    )
    def get(self, request):
        balance, expiring = selectors.balance_and_expiring_of_user(user=request.user)
        zone = timezone.get_current_timezone()
        for row in expiring:
            row["expires_at"] = local_iso(row["expires_at"], zone)
        promotions = selectors.promotions_running_and_soon(now=timezone.now())
        return Response(
            {
                "phone": request.user.phone,
                "balance": balance,
                "expiring": expiring,
                "promotions": [promotion_body(promotion, zone) for promotion in promotions],
            }
        )


def promotion_body(promotion, zone) -> dict:
    def when(moment):
        return local_iso(moment, zone) if moment else None

    def time_of_day(moment):
        return moment.isoformat(timespec="minutes") if moment else None

    return {
        "name": promotion.name,
        "kind": promotion.kind,
        "multiplier": f"{promotion.multiplier:.2f}" if promotion.multiplier else None,
        "bonus_points": promotion.bonus_points,
        "starts_at": when(promotion.starts_at),
        "ends_at": when(promotion.ends_at),
        "days": sorted(promotion.days),
        "hours_from": time_of_day(promotion.hours_from),
        "hours_until": time_of_day(promotion.hours_until),
    }


class MyTransactionsView(CustomerAPIView):
    pagination_class = NewestFirstRows

    @extend_schema(
        operation_id="my_transactions",
        summary="The customer's ledger, newest first, 50 a page",
        parameters=[
            OpenApiParameter(
                "cursor", str, description="The `next` link's cursor; omit it for the newest page."
            )
        ],
        responses={200: s.TransactionOutput(many=True), **error_responses(400, 401, 403)},
        examples=[
            OpenApiExample(
                "History",
                response_only=True,
                value={
                    "id": 981,
                    "kind": "redeem",
                    "points": -500,
                    "balance_after": 750,
                    "created_at": "2026-11-23T10:00:00+08:00",
                    "reference": "POS-2026-0002",
                    "description": "Used for a discount on order POS-2026-0002 at Shop A",
                },
            )
        ],
        tags=["customer"],
    )
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_rows(
            request, partial(selectors.entries_of_user, user=request.user)
        )
        zone = timezone.get_current_timezone()
        for row in page:
            row["created_at"] = local_iso(row["created_at"], zone)
        return paginator.get_paginated_response(entries_described(page))


PROFILE_EXAMPLE = {
    "language": "zh-hans",
    "name": "Li Wei",
    "birthday": {"month": 5, "day": 17, "year": None},
    "birthday_changeable_from": "2027-11-23T10:00:00+08:00",
    "profile_completed": True,
}


class MyProfileView(CustomerAPIView):
    @extend_schema(
        operation_id="my_profile",
        summary="The customer's profile: name, birthday, and the language of their texts",
        responses={200: s.ProfileOutput, **error_responses(401, 403)},
        examples=[OpenApiExample("Profile", response_only=True, value=PROFILE_EXAMPLE)],
        tags=["customer"],
    )
    def get(self, request):
        return Response(profile_body(request.user))

    @extend_schema(
        operation_id="my_profile_update",
        summary="Change the customer's profile: the fields sent, the others as they are",
        description=(
            "The birthday can be set once, then changed at most once a year "
            "(`birthday_changeable_from` says when; earlier, 409 `birthday_locked`), and "
            "never removed. A birthday set less than 30 days before it earns no birthday "
            "bonus that year. The first time the profile has a name and a birthday, the "
            "customer earns the profile-completed bonus, once."
        ),
        request=s.ProfileInput,
        responses={200: s.ProfileOutput, **error_responses(400, 401, 403, 409)},
        examples=[
            OpenApiExample(
                "Name and birthday",
                request_only=True,
                value={"name": "Li Wei", "birthday": {"month": 5, "day": 17}},
            ),
            OpenApiExample("Chinese", request_only=True, value={"language": "zh-hans"}),
            OpenApiExample("Profile", response_only=True, value=PROFILE_EXAMPLE),
            OpenApiExample(
                "Birthday changed too soon",
                response_only=True,
                status_codes=["409"],
                value={
                    "error": {
                        "code": "birthday_locked",
                        "message": "A birthday can be changed once a year; the next change "
                        "is possible from 2027-11-23.",
                        "details": {"changeable_from": "2027-11-23T10:00:00+08:00"},
                    }
                },
            ),
        ],
        tags=["customer"],
    )
    def patch(self, request):
        data = self.parse(s.ProfileInput)
        refuse_a_birthday_removed(data, request.user)
        user = profile_update(
            user=request.user,
            name=data.get("name"),
            birthday=data.get("birthday"),
            language=data.get("language"),
        )
        return Response(profile_body(user))


def refuse_a_birthday_removed(data: dict, user) -> None:
    """A birthday is set once and then changed at most once a year; null for one that is
    set would remove it, which the profile does not allow. While none is set, null is
    the birthday as it is."""
    if "birthday" in data and data["birthday"] is None and user.birthday_month is not None:
        raise AppError(
            "validation_error",
            _("The request is not valid; see details."),
            details={"birthday": [_("A birthday can be changed, not removed.")]},
        )


def profile_body(user) -> dict:
    member = selectors.member_of_user(user=user)
    birthday = birthday_of(user)
    changeable_from = birthday_changeable_from(user)
    return {
        "language": member.text_language if member else settings.LANGUAGE_CODE,
        "name": user.name,
        "birthday": asdict(birthday) if birthday else None,
        "birthday_changeable_from": local_iso(changeable_from) if changeable_from else None,
        "profile_completed": member is not None
        and selectors.member_profile_completed(member=member),
    }


def in_members_language(member):
    """The customer's own events in words, in the member's language, else the request's,
    as their history is (loyalty/history.py)."""
    return translation.override((member and member.language) or translation.get_language())


def outcome_text(event: MemberEvent) -> str:
    return str(MemberEvent.Outcome(event.outcome).label)


class MyCheckinsView(CustomerAPIView):
    @extend_schema(
        operation_id="my_checkin_create",
        summary="Check in for today: the points of the day of the streak",
        description=(
            "One check-in a day, the merchant's day: the first answers 201, any other the "
            "same day 200 with the same check-in. A day missed starts the streak again at "
            "day 1. A check-in that earns nothing (the program's check-in is off, a limit "
            "or the daily cap on bonus points is reached) still counts for the streak and "
            "says why in `outcome`."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=None,
        responses={
            201: s.CheckinOutput,
            200: s.CheckinOutput,
            **error_responses(400, 401, 403, 409),
        },
        examples=[
            OpenApiExample(
                "Day 7",
                response_only=True,
                status_codes=["201"],
                value={
                    "date": "2026-11-23",
                    "points": 50,
                    "streak": 7,
                    "outcome": "paid",
                    "outcome_text": "paid",
                    "balance": 1300,
                },
            )
        ],
        tags=["customer"],
    )
    def post(self, request):
        return respond_once(request, f"user:{request.user.pk}", self._check_in)

    def _check_in(self):
        user = self.request.user
        member = selectors.member_of_user(user=user) or member_link_user(user=user)
        event, new = checkin_record(member_id=member.pk, at=timezone.now())
        member.refresh_from_db(fields=["balance"])
        with in_members_language(member):
            body = {
                "date": event.local_day.isoformat(),
                "points": event.points,
                "streak": event.streak,
                "outcome": event.outcome,
                "outcome_text": outcome_text(event),
                "balance": member.balance,
            }
        return Response(body, status=201 if new else replay_status(201))


class MyEventsView(CustomerAPIView):
    pagination_class = NewestFirstCursor

    @extend_schema(
        operation_id="my_events",
        summary="The customer's events, newest first, and what each paid or why not",
        description=(
            "Every event the program recorded for the customer: sign-up, birthday, profile "
            "completed, check-ins and the storefront's events, 50 a page; follow `next`. An "
            "event that paid nothing is there too, with the reason in `outcome`."
        ),
        responses={200: s.MemberEventOutput(many=True), **error_responses(400, 401, 403)},
        examples=[
            OpenApiExample(
                "A review past its limit",
                response_only=True,
                value={
                    "id": 31,
                    "type": "review_written",
                    "name": "Review written",
                    "external_id": "REVIEW-8812",
                    "points": 0,
                    "outcome": "limit_reached",
                    "outcome_text": "nothing: the member has had it as often as it allows",
                    "streak": None,
                    "occurred_at": "2026-11-23T09:58:00+08:00",
                    "created_at": "2026-11-23T10:00:00+08:00",
                },
            )
        ],
        tags=["customer"],
    )
    def get(self, request):
        member = selectors.member_of_user(user=request.user)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.member_events(member=member), request, view=self
        )
        zone = timezone.get_current_timezone()
        with in_members_language(member):
            body = [member_event_body(event, zone) for event in page]
        return paginator.get_paginated_response(body)


def member_event_body(event: MemberEvent, zone) -> dict:
    return {
        "id": event.pk,
        "type": event.event_type,
        "name": event.rule.name if event.rule else event.event_type,
        "external_id": event.external_id,
        "points": event.points,
        "outcome": event.outcome,
        "outcome_text": outcome_text(event),
        "streak": event.streak,
        "occurred_at": local_iso(event.occurred_at, zone),
        "created_at": local_iso(event.created_at, zone),
    }
