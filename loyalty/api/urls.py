from django.urls import path

from . import customer_views, views

urlpatterns = [
    path("purchases", views.PurchaseCreateView.as_view(), name="purchase-create"),
    path("purchases/preview", views.PurchasePreviewView.as_view(), name="purchase-preview"),
    path(
        "purchases/<str:order_id>/refunds", views.RefundCreateView.as_view(), name="refund-create"
    ),
    path("events", views.EventCreateView.as_view(), name="event-create"),
    path("members/lookup", views.MemberLookupView.as_view(), name="member-lookup"),
    path("redemptions/quote", views.RedemptionQuoteView.as_view(), name="redemption-quote"),
    path("redemptions", views.RedemptionCreateView.as_view(), name="redemption-create"),
    path(
        "redemptions/<id:redemption_id>", views.RedemptionView.as_view(), name="redemption-detail"
    ),
    path(
        "redemptions/<id:redemption_id>/commit",
        views.RedemptionCommitView.as_view(),
        name="redemption-commit",
    ),
    path(
        "redemptions/<id:redemption_id>/cancel",
        views.RedemptionCancelView.as_view(),
        name="redemption-cancel",
    ),
    path("me", customer_views.MeView.as_view(), name="me"),
    path("me/profile", customer_views.MyProfileView.as_view(), name="my-profile"),
    path("me/check-ins", customer_views.MyCheckinsView.as_view(), name="my-checkins"),
    path("me/events", customer_views.MyEventsView.as_view(), name="my-events"),
    path("me/transactions", customer_views.MyTransactionsView.as_view(), name="my-transactions"),
]
