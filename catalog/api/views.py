from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors
from catalog.services import reward_order_cancel, reward_order_fulfil, reward_order_place
from core.api.idempotency import respond_once
from core.api.pagination import NewestFirstCursor
from core.errors import AppError, error_responses
from loyalty.api.customer_views import CustomerAPIView
from loyalty.api.views import (
    IDEMPOTENCY_PARAMETER,
    RETRY_OF_A_CHANGE,
    StoreAPIView,
    member_brief,
    member_for_phone,
)
from loyalty.selectors import member_of_user
from loyalty.services.members import member_link_user

from . import serializers as s

ORDER_EXAMPLE = {
    "id": 12,
    "code": "K7MW3RXA",
    "status": "pending",
    "item": {"id": 3, "name": "Canvas tote bag"},
    "quantity": 1,
    "points": 800,
    "cash_due": "10.00",
    "created_at": "2026-11-23T10:00:00+08:00",
    "member": {"phone": "+8613800138000", "balance": 450},
}


CANCELLED_EXAMPLE = OpenApiExample(
    "Cancelled",
    response_only=True,
    value={
        **ORDER_EXAMPLE,
        "status": "cancelled",
        "member": {**ORDER_EXAMPLE["member"], "balance": 1250},
    },
)


def reward_order_body(order) -> dict:
    return s.RewardOrderOutput(
        {
            "id": order.pk,
            "code": order.code,
            "status": order.status,
            "item": {"id": order.item_id, "name": order.item.name},
            "quantity": order.quantity,
            "points": order.points,
            "cash_due": order.cash_due,
            "created_at": order.created_at,
            "member": member_brief(order.member, order.member.balance),
        }
    ).data


class CatalogItemsView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="catalog_items",
        summary="The rewards on offer now, cheapest first (no login needed)",
        responses={200: s.CatalogOutput},
        examples=[
            OpenApiExample(
                "Catalog",
                response_only=True,
                value={
                    "results": [
                        {
                            "id": 3,
                            "name": "Canvas tote bag",
                            "description": "Organic cotton, 38 × 42 cm.",
                            "image": None,
                            "points": 800,
                            "cash_price": "10.00",
                            "stock_left": 50,
                        }
                    ]
                },
            )
        ],
        tags=["catalog"],
    )
    def get(self, request):
        items = selectors.catalog_items_available()
        # With the request, image URLs are absolute, as the schema's "uri" says and an app needs.
        output = s.CatalogItemOutput(items, many=True, context={"request": request})
        return Response({"results": output.data})


class StoreRewardOrderCreateView(StoreAPIView):
    @extend_schema(
        operation_id="reward_order_create",
        summary="Order a reward for a member; the points are taken at once",
        description="Picked up at any store with the `code`; `cash_due` is paid then.",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=s.StoreRewardOrderInput,
        responses={
            201: s.RewardOrderOutput,
            200: s.RewardOrderOutput,
            **error_responses(400, 401, 404, 409, 422),
        },
        examples=[
            OpenApiExample(
                "Order",
                request_only=True,
                value={"phone": "13800138000", "item_id": 3, "quantity": 1},
            ),
            OpenApiExample(
                "Ordered", response_only=True, status_codes=["201"], value=ORDER_EXAMPLE
            ),
        ],
        tags=["storefront"],
    )
    def post(self, request):
        return respond_once(request, f"store:{self.store.pk}", self._place)

    def _place(self):
        data = self.parse(s.StoreRewardOrderInput, self.request.data)
        order = reward_order_place(
            member=member_for_phone(data["phone"]),
            item_id=data["item_id"],
            quantity=data["quantity"],
            store=self.store,
        )
        return Response(reward_order_body(order), status=201)


class StoreRewardOrderView(StoreAPIView):
    @extend_schema(
        operation_id="reward_order_read",
        summary="A reward order this store placed, as it is now",
        description="Another store's order, or one the customer placed in the app, is 404.",
        responses={200: s.RewardOrderOutput, **error_responses(401, 404)},
        examples=[
            OpenApiExample("Pending", response_only=True, status_codes=["200"], value=ORDER_EXAMPLE)
        ],
        tags=["storefront"],
    )
    def get(self, request, order_id):
        order = selectors.store_reward_order(store=self.store, order_id=order_id)
        if order is None:
            raise AppError("not_found", _("This store placed no reward order with this id."))
        return Response(reward_order_body(order))


class StoreRewardOrderLookupView(StoreAPIView):
    @extend_schema(
        operation_id="reward_order_lookup",
        summary="Preview the reward order of a pickup code before handing it over, at any store",
        description=(
            "The code as the customer shows it: any case, with dashes or spaces. The pending "
            "order of the code, else the last one closed with it, so the clerk sees that it was "
            "handed over or cancelled. POST keeps the code out of URLs and access logs."
        ),
        request=s.PickupCodeInput,
        responses={200: s.RewardOrderOutput, **error_responses(400, 401, 404)},
        examples=[
            OpenApiExample("Lookup", request_only=True, value={"code": "k7mw-3rxa"}),
            OpenApiExample(
                "Pending", response_only=True, status_codes=["200"], value=ORDER_EXAMPLE
            ),
        ],
        tags=["storefront"],
    )
    def post(self, request):
        code = self.parse(s.PickupCodeInput, request.data)["code"]
        order = selectors.reward_order_by_code(code=code)
        if order is None:
            raise AppError("not_found", _("No reward order has this pickup code."))
        return Response(reward_order_body(order))


class StoreRewardOrderFulfilView(StoreAPIView):
    @extend_schema(
        operation_id="reward_order_fulfil",
        summary="Hand a reward over against its pickup code, at any store",
        description=(
            "Once handed over, the code is refused at every other store with 409 "
            "invalid_state." + RETRY_OF_A_CHANGE.format(thing="fulfilled order")
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=s.PickupCodeInput,
        responses={200: s.RewardOrderOutput, **error_responses(400, 401, 409, 422)},
        examples=[
            OpenApiExample("Fulfil", request_only=True, value={"code": "K7MW-3RXA"}),
            OpenApiExample(
                "Fulfilled",
                response_only=True,
                status_codes=["200"],
                value={**ORDER_EXAMPLE, "status": "fulfilled"},
            ),
        ],
        tags=["storefront"],
    )
    def post(self, request):
        return respond_once(request, f"store:{self.store.pk}", self._fulfil)

    def _fulfil(self):
        code = self.parse(s.PickupCodeInput, self.request.data)["code"]
        return Response(reward_order_body(reward_order_fulfil(store=self.store, code=code)))


class StoreRewardOrderCancelView(StoreAPIView):
    @extend_schema(
        operation_id="reward_order_cancel",
        summary="Cancel a pending reward order this store placed; points and stock go back",
        description=(
            "A fulfilled order is 409 invalid_state."
            + RETRY_OF_A_CHANGE.format(thing="cancelled order")
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=None,
        responses={200: s.RewardOrderOutput, **error_responses(400, 401, 404, 409)},
        examples=[CANCELLED_EXAMPLE],
        tags=["storefront"],
    )
    def post(self, request, order_id):
        return respond_once(request, f"store:{self.store.pk}", lambda: self._cancel(order_id))

    def _cancel(self, order_id):
        order = reward_order_cancel(order_id=order_id, store=self.store)
        return Response(reward_order_body(order))


class MyRewardOrdersView(CustomerAPIView):
    pagination_class = NewestFirstCursor

    @extend_schema(
        operation_id="my_reward_orders",
        summary="The customer's reward orders, newest first",
        responses={200: s.RewardOrderOutput(many=True), **error_responses(400, 401, 403)},
        examples=[
            OpenApiExample(
                "Orders",
                response_only=True,
                value=ORDER_EXAMPLE,
            )
        ],
        tags=["customer"],
    )
    def get(self, request):
        orders = selectors.member_reward_orders(member=member_of_user(user=request.user))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response([reward_order_body(order) for order in page])

    @extend_schema(
        operation_id="my_reward_order_create",
        summary="Order a reward with the customer's own points",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=s.MyRewardOrderInput,
        responses={
            201: s.RewardOrderOutput,
            200: s.RewardOrderOutput,
            **error_responses(400, 401, 403, 404, 409, 422),
        },
        examples=[
            OpenApiExample("Order", request_only=True, value={"item_id": 3, "quantity": 1}),
            OpenApiExample(
                "Ordered", response_only=True, status_codes=["201"], value=ORDER_EXAMPLE
            ),
        ],
        tags=["customer"],
    )
    def post(self, request):
        return respond_once(request, f"user:{request.user.pk}", self._place)

    def _place(self):
        data = self.parse(s.MyRewardOrderInput, self.request.data)
        member = member_of_user(user=self.request.user) or member_link_user(user=self.request.user)
        order = reward_order_place(
            member=member, item_id=data["item_id"], quantity=data["quantity"]
        )
        return Response(reward_order_body(order), status=201)


class MyRewardOrderCancelView(CustomerAPIView):
    @extend_schema(
        operation_id="my_reward_order_cancel",
        summary="Cancel one of the customer's own orders while it is pending",
        description=(
            "A fulfilled order is 409 invalid_state."
            + RETRY_OF_A_CHANGE.format(thing="cancelled order")
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=None,
        responses={200: s.RewardOrderOutput, **error_responses(400, 401, 403, 404, 409)},
        examples=[CANCELLED_EXAMPLE],
        tags=["customer"],
    )
    def post(self, request, order_id):
        return respond_once(request, f"user:{request.user.pk}", lambda: self._cancel(order_id))

    def _cancel(self, order_id):
        member = member_of_user(user=self.request.user)
        order = reward_order_cancel(order_id=order_id, member=member)
        return Response(reward_order_body(order))
