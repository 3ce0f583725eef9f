from django.urls import path

from . import views

urlpatterns = [
    path("catalog/items", views.CatalogItemsView.as_view(), name="catalog-items"),
    path("reward-orders", views.StoreRewardOrderCreateView.as_view(), name="reward-order-create"),
    path(
        "reward-orders/lookup",
        views.StoreRewardOrderLookupView.as_view(),
        name="reward-order-lookup",
    ),
    path(
        "reward-orders/fulfil",
        views.StoreRewardOrderFulfilView.as_view(),
        name="reward-order-fulfil",
    ),
    path(
        "reward-orders/<id:order_id>",
        views.StoreRewardOrderView.as_view(),
        name="reward-order-detail",
    ),
    path(
        "reward-orders/<id:order_id>/cancel",
        views.StoreRewardOrderCancelView.as_view(),
        name="reward-order-cancel",
    ),
    path("me/reward-orders", views.MyRewardOrdersView.as_view(), name="my-reward-orders"),
    path(
        "me/reward-orders/<id:order_id>/cancel",
        views.MyRewardOrderCancelView.as_view(),
        name="my-reward-order-cancel",
    ),
]
