"""The rewards catalog and its orders. Orders are read-only: a clerk hands a reward
over (fulfils) or cancels it through the services, which move points and stock."""

import contextlib

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.phones import InvalidPhone, mask_phone, normalize_phone
from core.admin import ReadOnlyAdmin, yes_no_icon
from core.converters import row_id
from core.errors import AppError
from loyalty.models import Store

from .models import RewardItem, RewardOrder
from .services import (
    normalize_code,
    reward_item_stock_change,
    reward_order_cancel,
    reward_order_fulfil,
)

# Fulfilling and cancelling are the only changes an order admits.
ORDER_HANDLING_PERMISSION = "catalog.change_rewardorder"
# The session remembers the store a clerk hands rewards over at, for the next pickup.
PICKUP_STORE_SESSION_KEY = "catalog_pickup_store_id"


class RewardItemForm(forms.ModelForm):
    """Stock moves under the form while it is open (orders take, cancellations put back):
    the change a clerk makes is applied to what is left when they save, not over it."""

    stock_shown = forms.IntegerField(
        label=_("stock when the page was opened"), widget=forms.HiddenInput, required=False
    )

    class Meta:
        model = RewardItem
        fields = (
            "name",
            "description",
            "image",
            "points",
            "cash_price",
            "is_active",
            "active_from",
            "active_until",
            "stock",
            "per_member_limit",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A staff member who may only view the item gets the form without its fields.
        if self.instance.pk and "stock" in self.fields:
            self.fields["stock_shown"].initial = self.instance.stock
            self.fields["stock"].help_text = _(
                "Items left; empty means unlimited. If orders or cancellations come in while "
                "this page is open, your change is added to theirs, not written over them."
            )


@admin.register(RewardItem)
class RewardItemAdmin(admin.ModelAdmin):
    form = RewardItemForm
    list_display = (
        "name",
        "thumbnail",
        "points",
        "cash_price",
        "stock_left",
        "on_sale_now",
        "window",
    )
    list_filter = ("is_active",)
    search_fields = ("name",)
    readonly_fields = ("image_preview",)
    fieldsets = (
        (None, {"fields": ("name", "description", "image", "image_preview")}),
        (_("Price"), {"fields": ("points", "cash_price")}),
        (
            _("Availability"),
            {
                "fields": (
                    "is_active",
                    ("active_from", "active_until"),
                    "stock",
                    "stock_shown",
                    "per_member_limit",
                )
            },
        ),
    )

    class Media:
        css = {"all": ["catalog/admin.css"]}

    @admin.display(description=_("image"))
    def thumbnail(self, item):
        return self._image(item, "reward-thumbnail")

    @admin.display(description=_("current image"))
    def image_preview(self, item):
        return self._image(item, "reward-image")

    @admin.display(description=_("stock left"), ordering="stock")
    def stock_left(self, item):
        return gettext("unlimited") if item.stock is None else item.stock

    def get_queryset(self, request):
        return super().get_queryset(request).with_on_sale_now()

    @admin.display(description=_("on sale now"), ordering="on_sale_now")
    def on_sale_now(self, item):
        return yes_no_icon(item.on_sale_now)

    @admin.display(description=_("sale window"), ordering="active_from")
    def window(self, item):
        start = timezone.localtime(item.active_from) if item.active_from else None
        end = timezone.localtime(item.active_until) if item.active_until else None
        if start is None and end is None:
            return gettext("always")
        if end is None:
            return gettext("from %(start)s") % {"start": f"{start:%Y-%m-%d %H:%M}"}
        if start is None:
            return gettext("until %(end)s") % {"end": f"{end:%Y-%m-%d %H:%M}"}
        return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M}"

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        obj.save(
            update_fields=[
                f.name for f in obj._meta.concrete_fields if not f.primary_key and f.name != "stock"
            ]
        )
        reward_item_stock_change(
            item=obj, shown=form.cleaned_data.get("stock_shown"), wanted=form.cleaned_data["stock"]
        )

    @staticmethod
    def _image(item, css_class):
        if not item.image:
            return ""
        return format_html('<img src="{}" alt="" class="{}">', item.image.url, css_class)


@admin.register(RewardOrder)
class RewardOrderAdmin(ReadOnlyAdmin):
    """Orders change only through the services (points and stock move with them)."""

    list_display = (
        "code",
        "item",
        "member_phone",
        "quantity",
        "points",
        "cash_due",
        "status",
        "store",
        "created_at",
    )
    list_filter = ("status", "store", "fulfilled_by")
    search_fields = ("code",)
    search_help_text = _(
        "A pickup code, in any case, with or without dashes and spaces; or the member's phone."
    )
    list_select_related = ("item", "member", "store")
    fields = (
        "code",
        "status",
        "item",
        "quantity",
        "points",
        "cash_due",
        "member_phone",
        "store",
        "created_at",
        "fulfilled_by",
        "closed_at",
    )
    readonly_fields = fields
    change_form_template = "admin/catalog/rewardorder/change_form.html"

    @admin.display(description=_("member"), ordering="member__phone")
    def member_phone(self, order):
        return mask_phone(order.member.phone)

    def get_search_results(self, request, queryset, search_term):
        """Codes as the customer reads them out (any case, dashes, spaces); phones in any
        format a person types them."""
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = Q(code=normalize_code(term))
        with contextlib.suppress(InvalidPhone):
            matches |= Q(member__phone=normalize_phone(term))
        return queryset.filter(matches), False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/fulfil/",
                view(self.fulfil_view),
                name="catalog_rewardorder_fulfil",
            ),
            path(
                "<path:object_id>/cancel/",
                view(self.cancel_view),
                name="catalog_rewardorder_cancel",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        can_handle = (
            obj is not None
            and obj.status == RewardOrder.Status.PENDING
            and request.user.has_perm(ORDER_HANDLING_PERMISSION)
        )
        context["can_handle"] = can_handle
        context["currency"] = settings.CURRENCY
        if can_handle:
            context["stores"] = Store.objects.order_by("name")
            context["pickup_store_id"] = self._pickup_store_id(request, context["stores"])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def fulfil_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        order = self._order_for(request, object_id)
        store = Store.objects.filter(pk=row_id(request.POST.get("store"))).first()
        if store is None:
            messages.error(request, gettext("Choose the store that hands the reward over."))
        elif order.status != RewardOrder.Status.PENDING:
            messages.error(request, self._closed_message(order))
        else:
            try:
                # By its code, as at any store's counter; the order was pending just now,
                # and only one pending order has that code.
                order = reward_order_fulfil(store=store, code=order.code)
            except AppError:
                order.refresh_from_db()
                messages.error(request, self._closed_message(order))
            else:
                request.session[PICKUP_STORE_SESSION_KEY] = store.pk
                self.log_change(
                    request, order, gettext("Fulfilled at %(store)s.") % {"store": store}
                )
                messages.success(request, self._fulfilled_message(order))
        return HttpResponseRedirect(self._order_url(order))

    def cancel_view(self, request, object_id):
        order = self._order_for(request, object_id)
        if request.method == "POST":
            if order.status != RewardOrder.Status.PENDING:
                messages.error(request, self._closed_message(order))
                return HttpResponseRedirect(self._order_url(order))
            try:
                # On the member's behalf: the ledger entry names the clerk, not a store.
                order = reward_order_cancel(
                    order_id=order.pk, member=order.member, staff_user=request.user
                )
            except AppError:
                order.refresh_from_db()
                messages.error(request, self._closed_message(order))
            else:
                self.log_change(request, order, gettext("Cancelled."))
                messages.success(
                    request,
                    gettext(
                        "Order %(code)s is cancelled: %(points)d points went back to "
                        "%(member)s and %(quantity)d × %(item)s back to stock."
                    )
                    % {
                        "code": order.code,
                        "points": order.points,
                        "member": mask_phone(order.member.phone),
                        "quantity": order.quantity,
                        "item": order.item.name,
                    },
                )
            return HttpResponseRedirect(self._order_url(order))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Cancel reward order %(code)s") % {"code": order.code},
            "opts": self.opts,
            "order": order,
            "member_phone": mask_phone(order.member.phone),
            "order_url": self._order_url(order),
        }
        return TemplateResponse(request, "admin/catalog/rewardorder/cancel.html", context)

    def _order_for(self, request, object_id) -> RewardOrder:
        if not request.user.has_perm(ORDER_HANDLING_PERMISSION):
            raise PermissionDenied
        order = self.get_object(request, unquote(object_id))
        if order is None:
            raise Http404
        return order

    def _order_url(self, order: RewardOrder) -> str:
        return reverse("admin:catalog_rewardorder_change", args=[order.pk])

    def _pickup_store_id(self, request, stores) -> int | None:
        remembered = request.session.get(PICKUP_STORE_SESSION_KEY)
        ids = [store.pk for store in stores]
        if remembered in ids:
            return remembered
        return ids[0] if len(ids) == 1 else None

    @staticmethod
    def _fulfilled_message(order: RewardOrder) -> str:
        values = {
            "code": order.code,
            "quantity": order.quantity,
            "item": order.item.name,
            "cash": order.cash_due,
            "currency": settings.CURRENCY,
        }
        if order.cash_due:
            return (
                gettext(
                    "Order %(code)s is fulfilled: hand over %(quantity)d × %(item)s and collect "
                    "%(cash)s %(currency)s in cash."
                )
                % values
            )
        return gettext("Order %(code)s is fulfilled: hand over %(quantity)d × %(item)s.") % values

    @staticmethod
    def _closed_message(order: RewardOrder) -> str:
        values = {
            "code": order.code,
            "when": f"{timezone.localtime(order.closed_at):%Y-%m-%d %H:%M}"
            if order.closed_at
            else "",
            "store": order.fulfilled_by or "",
        }
        if order.status == RewardOrder.Status.FULFILLED:
            return (
                gettext(
                    "Order %(code)s was fulfilled already, at %(store)s on %(when)s: "
                    "do not hand it over again."
                )
                % values
            )
        if order.status == RewardOrder.Status.CANCELLED:
            return (
                gettext("Order %(code)s was cancelled on %(when)s: nothing can be done with it.")
                % values
            )
        return gettext("Order %(code)s is still pending.") % values
