from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.response import Response

from core.api.fields import REFERENCE_SCHEMA, local_iso
from core.api.idempotency import HEADER, KEY_PATTERN, replay_status, respond_once
from core.api.views import StoreAPIView
from core.errors import AppError, error_responses
from loyalty import selectors
from loyalty.models import MemberEvent, Redemption
from loyalty.services.events import store_event_record
from loyalty.services.promotions import REASON_TEXT, points_by_rule
from loyalty.services.purchases import (
    BasketLine,
    purchase_preview,
    purchase_record,
)
from loyalty.services.redemptions import (
    redemption_cancel,
    redemption_commit,
    redemption_hold,
    redemption_quote,
)
from loyalty.services.refunds import LineRefund, refund_record

from . import serializers as s

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    {"type": "string", "pattern": f"^{KEY_PATTERN.pattern}$"},
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string of 1 to 255 visible ASCII characters. A retry with the same key "
        "and body returns the first answer (200 instead of 201); a different body gets 409."
    ),
)


# The end of the description of a commit, cancel or pickup.
RETRY_OF_A_CHANGE = (
    " Sent again, it answers 200 with the {thing} as it is now, so a client that lost the "
    "answer may simply retry; with an `Idempotency-Key` the retry gets the first answer."
)


def member_brief(member, balance: int) -> dict:
    return {"phone": member.phone, "balance": balance}


class PurchaseCreateView(StoreAPIView):
    @extend_schema(
        operation_id="purchase_create",
        summary="Report a purchase; the member earns points",
        description=(
            "Creates the member on the first purchase of a phone. The basket's `lines` are "
            "optional; sent, they must add up to `amount` and each have its own `line_id`. "
            "Idempotent by `order_id` per store: the same order again returns the first answer "
            "with 200; the same order with another phone, amount or basket is refused with 409."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=s.PurchaseInput,
        responses={201: s.PurchaseOutput, 200: s.PurchaseOutput, **error_responses(400, 401, 409)},
        examples=[
            OpenApiExample(
                "Purchase",
                request_only=True,
                value={"phone": "13800138000", "order_id": "POS-2026-0001", "amount": "300.00"},
            ),
            OpenApiExample(
                "Purchase with its basket",
                request_only=True,
                value={
                    "phone": "13800138000",
                    "order_id": "POS-2026-0002",
                    "amount": "300.00",
                    "lines": [
                        {
                            "line_id": "1",
                            "sku": "COFFEE-L",
                            "category": "coffee",
                            "quantity": 2,
                            "amount": "60.00",
                        },
                        {
                            "line_id": "2",
                            "sku": "BEANS-1KG",
                            "category": "beans",
                            "quantity": 1,
                            "amount": "240.00",
                        },
                    ],
                },
            ),
            OpenApiExample(
                "Earned",
                response_only=True,
                status_codes=["201"],
                value={
                    "purchase_id": 42,
                    "order_id": "POS-2026-0001",
                    "points_earned": 300,
                    "member": {"phone": "+8613800138000", "balance": 1250},
                },
            ),
        ],
        tags=["storefront"],
    )
    def post(self, request):
        return respond_once(request, f"store:{self.store.pk}", self._record)

    def _record(self):
        data = self.parse(s.PurchaseInput, self.request.data)
        lines = [BasketLine(**line) for line in data.pop("lines", [])]
        recorded = purchase_record(store=self.store, lines=lines, **data)
        purchase = recorded.record
        body = {
            "purchase_id": purchase.pk,
            "order_id": purchase.order_id,
            "points_earned": purchase.points_earned,
            "member": member_brief(purchase.member, purchase.balance_after),
        }
        return Response(body, status=201 if recorded.created else replay_status(201))


class PurchasePreviewView(StoreAPIView):
    @extend_schema(
        operation_id="purchase_preview",
        summary="What a purchase would earn now, and why each promotion would or would not apply",
        description=(
            "Takes the body of a purchase (the order id may be left out) and runs the very "
            "evaluation the purchase would: the points per line, the promotions that would "
            "apply and, for each rule in effect that would not, why. Writes nothing, takes no "
            "use of a limited promotion and no budget: the purchase itself may still find a "
            "limit reached by then."
        ),
        request=s.PreviewInput,
        responses={200: s.PreviewOutput, **error_responses(400, 401)},
        examples=[
            OpenApiExample(
                "A basket at checkout",
                request_only=True,
                value={
                    "phone": "13800138000",
                    "amount": "350.00",
                    "lines": [
                        {"line_id": "1", "sku": "COFFEE-L", "quantity": 2, "amount": "60.00"},
                        {"line_id": "2", "sku": "BEANS-1KG", "quantity": 1, "amount": "240.00"},
                        {
                            "line_id": "3",
                            "sku": "CIG-20",
                            "category": "tobacco",
                            "quantity": 1,
                            "amount": "50.00",
                        },
                    ],
                },
            ),
            OpenApiExample(
                "Preview",
                response_only=True,
                value={
                    "points": 600,
                    "lines": [
                        {"line_id": "1", "points": 120},
                        {"line_id": "2", "points": 480},
                        {"line_id": "3", "points": 0},
                    ],
                    "rules_applied": [
                        {"rule_id": 2, "name": "Double points on weekends", "points": 300}
                    ],
                    "rules_not_applied": [
                        {
                            "rule_id": 5,
                            "name": "200 more over 500.00",
                            "reason": "below_minimum_spend",
                            "message": "The basket spends less than its minimum on the items "
                            "it covers.",
                        }
                    ],
                },
            ),
        ],
        tags=["storefront"],
    )
    def post(self, request):
        data = self.parse(s.PreviewInput, request.data)
        lines = [BasketLine(**line) for line in data.get("lines", [])]
        preview = purchase_preview(
            store=self.store, phone=data["phone"], amount=data["amount"], lines=lines
        )
        return Response(preview_body(preview, lines))


def preview_body(preview, lines) -> dict:
    earned, rules = preview.earning, preview.rules
    points_by_rule_id = points_by_rule(earned)
    return {
        "points": earned.points,
        "lines": [
            {"line_id": line.line_id, "points": earned.points_of_line(line.line_id)}
            for line in lines
        ],
        "rules_applied": [
            {"rule_id": rule_id, "name": rules[rule_id].name, "points": points}
            for rule_id, points in points_by_rule_id.items()
        ],
        "rules_not_applied": [
            {
                "rule_id": rule_id,
                "name": rules[rule_id].name,
                "reason": reason,
                "message": str(REASON_TEXT[reason]),
            }
            for rule_id, reason in sorted(earned.not_applied.items())
        ],
    }


class RefundCreateView(StoreAPIView):
    @extend_schema(
        operation_id="refund_create",
        summary="Report a refund; the points the refunded money earned are taken back",
        description=(
            "A refund names an amount, or the lines of the basket refunded (units or "
            "money of each); a purchase is refunded one way or the other, as its first "
            "refund was (422 `refund_mode_mismatch`). Refunds add up: the points reversed "
            "are what the total refunded earned (by amount: min(earned, floor(total "
            "refunded × earn rate at purchase time)), or in proportion under earning "
            "rules; by line: in proportion to each line's money, of what the line earned) "
            "minus what earlier refunds reversed; the refund that completes the purchase "
            "takes back all its points, bonuses too. The balance may go below zero when "
            "the points were already spent; the next purchases pay that back first. "
            "Idempotent by `refund_id` per purchase."
        ),
        parameters=[
            IDEMPOTENCY_PARAMETER,
            OpenApiParameter("order_id", REFERENCE_SCHEMA, OpenApiParameter.PATH),
        ],
        request=s.RefundInput,
        responses={
            201: s.RefundOutput,
            200: s.RefundOutput,
            **error_responses(400, 401, 404, 409, 422),
        },
        examples=[
            OpenApiExample(
                "Partial refund",
                request_only=True,
                value={"refund_id": "R-1", "amount": "100.00"},
            ),
            OpenApiExample(
                "Refund of lines",
                request_only=True,
                value={
                    "refund_id": "R-2",
                    "lines": [
                        {"line_id": "1", "quantity": 1},
                        {"line_id": "3", "amount": "5.00"},
                    ],
                },
            ),
            OpenApiExample(
                "Reversed",
                response_only=True,
                status_codes=["201"],
                value={
                    "refund_id": "R-1",
                    "amount": "100.00",
                    "points_reversed": 100,
                    "lines": [],
                    "member": {"phone": "+8613800138000", "balance": 1150},
                },
            ),
            OpenApiExample(
                "Lines reversed",
                response_only=True,
                status_codes=["201"],
                value={
                    "refund_id": "R-2",
                    "amount": "17.50",
                    "points_reversed": 30,
                    "lines": [
                        {"line_id": "1", "quantity": 1, "amount": "12.50", "points_reversed": 25},
                        {"line_id": "3", "quantity": None, "amount": "5.00", "points_reversed": 5},
                    ],
                    "member": {"phone": "+8613800138000", "balance": 1220},
                },
            ),
            OpenApiExample(
                "Too much refunded",
                response_only=True,
                status_codes=["422"],
                value={
                    "error": {
                        "code": "refund_exceeds_purchase",
                        "message": "The refunds would exceed the purchase amount.",
                        "details": {
                            "purchase_amount": "300.00",
                            "refunded_amount": "250.00",
                            "refundable_amount": "50.00",
                        },
                    }
                },
            ),
        ],
        tags=["storefront"],
    )
    def post(self, request, order_id):
        return respond_once(request, f"store:{self.store.pk}", lambda: self._record(order_id))

    def _record(self, order_id):
        data = self.parse(s.RefundInput, self.request.data)
        self.parse(s.OrderIdInput, {"order_id": order_id})
        recorded = refund_record(
            store=self.store,
            order_id=order_id,
            refund_id=data["refund_id"],
            amount=data.get("amount"),
            lines=[LineRefund(**line) for line in data.get("lines", ())],
        )
        refund = recorded.record
        body = {
            "refund_id": refund.refund_id,
            "amount": f"{refund.amount:.2f}",
            "points_reversed": refund.points_reversed,
            "lines": [
                {
                    "line_id": line.line.line_id,
                    "quantity": line.quantity,
                    "amount": f"{line.amount:.2f}",
                    "points_reversed": line.points_reversed,
                }
                for line in refund.lines.select_related("line").order_by("id")
            ],
            "member": member_brief(refund.purchase.member, refund.balance_after),
        }
        return Response(body, status=201 if recorded.created else replay_status(201))


class EventCreateView(StoreAPIView):
    @extend_schema(
        operation_id="event_create",
        summary="Report a customer's event (a review written, an app installed); the member "
        "earns what its rule gives",
        description=(
            "`type` is a custom event type the merchant declared in admin; the program's own "
            "(signup, birthday, profile_completed, checkin) and undeclared types are refused "
            "with 422 `unknown_event_type`. Creates the member on the first event of a phone. "
            "An event that earns nothing (its rule is off, a limit, the budget or the "
            "member's daily cap on bonus points is reached) is recorded too, and `outcome` "
            "says why. Idempotent by (phone, type, external_id): the same event again "
            "answers 200 with the first record, whatever its `occurred_at`, and pays nothing; "
            "`member.balance` is the balance now."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=s.EventInput,
        responses={
            201: s.EventOutput,
            200: s.EventOutput,
            **error_responses(400, 401, 409, 422),
        },
        examples=[
            OpenApiExample(
                "Review written",
                request_only=True,
                value={
                    "phone": "13800138000",
                    "type": "review_written",
                    "external_id": "REVIEW-8812",
                    "occurred_at": "2026-11-23T09:58:00+08:00",
                },
            ),
            OpenApiExample(
                "Paid",
                response_only=True,
                status_codes=["201"],
                value={
                    "id": 31,
                    "type": "review_written",
                    "external_id": "REVIEW-8812",
                    "occurred_at": "2026-11-23T09:58:00+08:00",
                    "points": 20,
                    "outcome": "paid",
                    "outcome_text": "paid",
                    "member": {"phone": "+8613800138000", "balance": 1270},
                },
            ),
            OpenApiExample(
                "Unknown type",
                response_only=True,
                status_codes=["422"],
                value={
                    "error": {
                        "code": "unknown_event_type",
                        "message": "The program has no event of this type that a store may report.",
                        "details": {"type": "checkin"},
                    }
                },
            ),
        ],
        tags=["storefront"],
    )
    def post(self, request):
        return respond_once(request, f"store:{self.store.pk}", self._record)

    def _record(self):
        data = self.parse(s.EventInput, self.request.data)
        event, new = store_event_record(
            store=self.store,
            phone=data["phone"],
            event_type=data["type"],
            external_id=data["external_id"],
            occurred_at=data["occurred_at"],
        )
        body = {
            "id": event.pk,
            "type": event.event_type,
            "external_id": event.external_id,
            "occurred_at": local_iso(event.occurred_at),
            "points": event.points,
            "outcome": event.outcome,
            "outcome_text": str(MemberEvent.Outcome(event.outcome).label),
            "member": member_brief(event.member, event.member.balance),
        }
        return Response(body, status=201 if new else replay_status(201))


class MemberLookupView(StoreAPIView):
    @extend_schema(
        operation_id="member_lookup",
        summary="Look a member up by phone",
        description="POST keeps the phone number out of URLs and access logs.",
        request=s.LookupInput,
        responses={200: s.MemberOutput, **error_responses(400, 401, 404)},
        examples=[
            OpenApiExample("Lookup", request_only=True, value={"phone": "+8613800138000"}),
            OpenApiExample(
                "Member",
                response_only=True,
                status_codes=["200"],
                value={
                    "phone": "+8613800138000",
                    "balance": 1250,
                    "expiring": [{"points": 300, "expires_at": "2027-08-01T00:00:00+08:00"}],
                    "registered": False,
                },
            ),
        ],
        tags=["storefront"],
    )
    def post(self, request):
        member = member_for_phone(self.parse(s.LookupInput, request.data)["phone"])
        body = {
            "phone": member.phone,
            "balance": member.balance,
            "expiring": selectors.member_expiring_points(member=member),
            "registered": member.user_id is not None,
        }
        return Response(s.MemberOutput(body).data)


def member_for_phone(phone: str):
    member = selectors.member_by_phone(phone=phone)
    if member is None:
        raise AppError("not_found", _("No member has this phone number."))
    return member


def redemption_body(redemption) -> dict:
    """As s.RedemptionOutput writes it, without building a serializer on every hold."""
    return {
        "id": redemption.pk,
        "order_id": redemption.order_id,
        "status": redemption.status,
        "points": redemption.points,
        "discount": DISCOUNT_FIELD.to_representation(redemption.discount),
        "hold_expires_at": (
            local_iso(redemption.hold_expires_at)
            if redemption.status == Redemption.Status.HELD
            else None
        ),
        "member": member_brief(redemption.member, redemption.member.balance),
    }


# Built once: the serializer's own field writes the amount exactly as the schema says.
DISCOUNT_FIELD = s.RedemptionOutput().fields["discount"]


REDEMPTION_EXAMPLE = {
    "id": 7,
    "order_id": "POS-2026-0002",
    "status": "held",
    "points": 500,
    "discount": "5.00",
    "hold_expires_at": "2026-11-23T10:15:00+08:00",
    "member": {"phone": "+8613800138000", "balance": 750},
}


class RedemptionQuoteView(StoreAPIView):
    @extend_schema(
        operation_id="redemption_quote",
        summary="The most points, and the discount they make, a bill may use",
        description=(
            "max_points is the least of the balance and the capped share of the bill; it is 0 "
            "when that is below min_points. The discount is floor_to_cent(points / redeem_rate)."
        ),
        request=s.QuoteInput,
        responses={200: s.QuoteOutput, **error_responses(400, 401, 404)},
        examples=[
            OpenApiExample(
                "Quote",
                request_only=True,
                value={"phone": "13800138000", "order_total": "33.33"},
            ),
            OpenApiExample(
                "Quoted",
                response_only=True,
                status_codes=["200"],
                value={
                    "balance": 1250,
                    "max_points": 1666,
                    "max_discount": "16.66",
                    "redeem_rate": 100,
                    "min_points": 100,
                },
            ),
        ],
        tags=["storefront"],
    )
    def post(self, request):
        data = self.parse(s.QuoteInput, request.data)
        member = member_for_phone(data["phone"])
        quote = redemption_quote(member=member, order_total=data["order_total"])
        return Response(s.QuoteOutput(quote).data)


class RedemptionCreateView(StoreAPIView):
    @extend_schema(
        operation_id="redemption_hold",
        summary="Hold points as a discount on an order",
        description=(
            "The points leave the balance at once and are held until the order is paid "
            "(commit) or cancelled; a hold not committed within the program's hold minutes is "
            "released. One live redemption per order: another hold for the same order is 409."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=s.RedemptionInput,
        responses={
            201: s.RedemptionOutput,
            200: s.RedemptionOutput,
            **error_responses(400, 401, 404, 409, 422),
        },
        examples=[
            OpenApiExample(
                "Hold",
                request_only=True,
                value={
                    "phone": "13800138000",
                    "order_id": "POS-2026-0002",
                    "order_total": "80.00",
                    "points": 500,
                },
            ),
            OpenApiExample(
                "Held", response_only=True, status_codes=["201"], value=REDEMPTION_EXAMPLE
            ),
            OpenApiExample(
                "Over the cap",
                response_only=True,
                status_codes=["422"],
                value={
                    "error": {
                        "code": "redeem_cap_exceeded",
                        "message": "Points may pay at most 50% of this bill: 4000 points.",
                        "details": {"max_points": 4000, "requested": 5000},
                    }
                },
            ),
        ],
        tags=["storefront"],
    )
    def post(self, request):
        return respond_once(request, f"store:{self.store.pk}", self._hold)

    def _hold(self):
        data = self.parse(s.RedemptionInput, self.request.data)
        redemption = redemption_hold(
            store=self.store,
            member=member_for_phone(data["phone"]),
            order_id=data["order_id"],
            order_total=data["order_total"],
            points=data["points"],
        )
        return Response(redemption_body(redemption), status=201)


class RedemptionView(StoreAPIView):
    @extend_schema(
        operation_id="redemption_read",
        summary="A redemption this store made, as it is now",
        description=(
            "For a till that lost an answer, or restarted mid-checkout: the status says "
            "whether to commit, cancel or hold again. Another store's redemption is 404."
        ),
        responses={200: s.RedemptionOutput, **error_responses(401, 404)},
        examples=[
            OpenApiExample(
                "Held", response_only=True, status_codes=["200"], value=REDEMPTION_EXAMPLE
            )
        ],
        tags=["storefront"],
    )
    def get(self, request, redemption_id):
        redemption = selectors.store_redemption(store=self.store, redemption_id=redemption_id)
        if redemption is None:
            raise AppError("not_found", _("This store has no redemption with this id."))
        return Response(redemption_body(redemption))


class RedemptionCommitView(StoreAPIView):
    @extend_schema(
        operation_id="redemption_commit",
        summary="The order is paid: spend the held points",
        description=(
            "Commits while the redemption is held. A hold past its hold_expires_at can still be "
            "committed until the release job (every minute) has given the points back; after "
            "that, or after a cancel, the answer is 409 invalid_state and the storefront should "
            "hold again." + RETRY_OF_A_CHANGE.format(thing="committed redemption")
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=None,
        responses={200: s.RedemptionOutput, **error_responses(400, 401, 404, 409)},
        examples=[
            OpenApiExample(
                "Committed",
                response_only=True,
                status_codes=["200"],
                value={**REDEMPTION_EXAMPLE, "status": "committed", "hold_expires_at": None},
            )
        ],
        tags=["storefront"],
    )
    def post(self, request, redemption_id):
        return respond_once(request, f"store:{self.store.pk}", lambda: self._commit(redemption_id))

    def _commit(self, redemption_id):
        redemption = redemption_commit(store=self.store, redemption_id=redemption_id)
        return Response(redemption_body(redemption))


class RedemptionCancelView(StoreAPIView):
    @extend_schema(
        operation_id="redemption_cancel",
        summary="The order is cancelled: the points go back, with their original expiry",
        description=(
            "Cancels a held or committed redemption; one the release job already released is "
            "409 invalid_state." + RETRY_OF_A_CHANGE.format(thing="cancelled redemption")
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=None,
        responses={200: s.RedemptionOutput, **error_responses(400, 401, 404, 409)},
        examples=[
            OpenApiExample(
                "Cancelled",
                response_only=True,
                status_codes=["200"],
                value={
                    **REDEMPTION_EXAMPLE,
                    "status": "cancelled",
                    "hold_expires_at": None,
                    "member": {"phone": "+8613800138000", "balance": 1250},
                },
            )
        ],
        tags=["storefront"],
    )
    def post(self, request, redemption_id):
        return respond_once(request, f"store:{self.store.pk}", lambda: self._cancel(redemption_id))

    def _cancel(self, redemption_id):
        redemption = redemption_cancel(store=self.store, redemption_id=redemption_id)
        return Response(redemption_body(redemption))
