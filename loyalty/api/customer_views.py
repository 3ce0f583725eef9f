"""The customer's own view of the program: a token sees only its own member.

These are the hottest reads, so they build their bodies from rows, not serializers;
MeOutput and TransactionOutput still describe them, and the schema tests hold the
bodies to that.
"""

from functools import partial

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.response import Response

from core.api.fields import local_iso
from core.api.pagination import NewestFirstRows
from core.api.views import CustomerAPIView
from core.errors import error_responses
from loyalty import selectors
from loyalty.history import entries_described
from loyalty.services.members import member_language_set

from . import serializers as s


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


class MyProfileView(CustomerAPIView):
    @extend_schema(
        operation_id="my_profile",
        summary="The customer's profile: the language of their texts and history",
        responses={200: s.ProfileOutput, **error_responses(401, 403)},
        examples=[OpenApiExample("Profile", response_only=True, value={"language": "zh-hans"})],
        tags=["customer"],
    )
    def get(self, request):
        member = selectors.member_of_user(user=request.user)
        language = member.text_language if member else settings.LANGUAGE_CODE
        return Response({"language": language})

    @extend_schema(
        operation_id="my_profile_update",
        summary="Change the customer's profile: the fields sent, the others as they are",
        request=s.ProfileInput,
        responses={200: s.ProfileOutput, **error_responses(400, 401, 403)},
        examples=[
            OpenApiExample("Chinese", request_only=True, value={"language": "zh-hans"}),
            OpenApiExample("Profile", response_only=True, value={"language": "zh-hans"}),
        ],
        tags=["customer"],
    )
    def patch(self, request):
        data = self.parse(s.ProfileInput, partial=True)
        if "language" in data:
            member_language_set(user=request.user, language=data["language"])
        return self.get(request)
