"""Webhooks in admin: the stores' endpoints, managed through the services; the events
and the log of their deliveries, read-only (docs/webhooks.md).

An endpoint's signing secret is shown once, on the endpoint's page right after it is
created or rotated; the page shows only `whsec_…` afterwards. As a store's new API key
(loyalty/admin/stores.py), the new secret waits for that page in the session, kept on
the server, not in a message, which Django keeps in a signed but readable cookie."""

import json
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, ReadOnlyInline, yes_no_icon
from core.errors import AppError
from loyalty.admin.display import member_label

from .models import TEST_EVENT_TYPE, Attempt, Delivery, Endpoint, Event, EventType
from .services import (
    PREVIOUS_SECRET_VALID_FOR,
    deliveries_resend_failed,
    delivery_resend,
    endpoint_create,
    endpoint_disable,
    endpoint_enable,
    endpoint_secret_rotate,
    endpoint_test_send,
    event_types_refusal,
    url_refusal,
)

# Managing endpoints, resending deliveries included, is changing endpoints.
MANAGE_PERMISSION = "webhooks.change_endpoint"
# Session entry of the secrets created or rotated and not shown yet: [endpoint id, secret].
NEW_SECRETS_SESSION_KEY = "webhooks:new-secrets"
MASKED_SECRET = "whsec_…"
# How much of an answer the attempts' table shows; the whole excerpt is on no page.
EXCERPT_SHOWN = 200
SYSTEM_REASONS = (Endpoint.DisabledBecause.GONE, Endpoint.DisabledBecause.FAILING)


def event_type_label(value: str) -> str:
    """An event type in words, with its code as receivers see it."""
    if value == TEST_EVENT_TYPE:
        words = gettext("test event")
    elif value in EventType.values:
        words = EventType(value).label
    else:
        words = ""
    return format_html('{} <code translate="no">{}</code>', words, value)


def code(value) -> str:
    """Data a receiver's developer reads as it is: ids, codes, answers."""
    return format_html('<code translate="no">{}</code>', value) if value else "-"


def stopped_notices() -> list[str]:
    """One notice per endpoint the system switched off, for the list and the home page."""
    stopped = Endpoint.objects.filter(is_enabled=False, disabled_because__in=SYSTEM_REASONS)
    return [stopped_notice(endpoint) for endpoint in stopped.select_related("store")]


def stopped_notice(endpoint: Endpoint) -> str:
    """What staff are told of an endpoint the system switched off, linked to its page."""
    values = {
        "url": endpoint.url,
        "store": endpoint.store.name,
        "reason": endpoint.get_disabled_because_display(),
        "when": timezone.localtime(endpoint.disabled_at).strftime("%Y-%m-%d %H:%M")
        if endpoint.disabled_at
        else "-",
    }
    text = gettext(
        "Nothing is sent to %(url)s (%(store)s): the system disabled it on %(when)s, because "
        "%(reason)s. Once the receiver is fixed, enable it, then resend the failed "
        "deliveries."
    )
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:webhooks_endpoint_change", args=[endpoint.pk]),
        text % values,
    )


class EndpointForm(forms.ModelForm):
    url = forms.URLField(
        label=Endpoint._meta.get_field("url").verbose_name,
        max_length=Endpoint._meta.get_field("url").max_length,
        # An address typed without its scheme is taken for the one scheme allowed.
        assume_scheme="https",
        help_text=_(
            "Where the events are sent: an HTTPS address. It must answer within 15 seconds "
            "with a success status (200 to 299); redirects are not followed."
        ),
    )
    event_types = forms.MultipleChoiceField(
        label=capfirst(Endpoint._meta.get_field("event_types").verbose_name),
        # Named as staff read them and as the receiver's developer does, in the language
        # of the request that shows the form.
        choices=[(value, lazy(event_type_label, SafeString)(value)) for value in EventType.values],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The endpoint is sent these events and no others."),
    )

    class Meta:
        model = Endpoint
        fields = ("store", "url", "description", "event_types", "include_phone")

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        refusal = url_refusal(url)
        if refusal:
            raise forms.ValidationError(refusal)
        return url

    def clean_event_types(self):
        event_types = self.cleaned_data["event_types"]
        refusal = event_types_refusal(event_types)
        if refusal:
            raise forms.ValidationError(refusal)
        return [value for value in EventType.values if value in event_types]


class ResendFailedForm(forms.Form):
    since = forms.DateTimeField(
        label=_("Failed since"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_(
            "In the shop's time zone. Deliveries that failed at or after it are sent again."
        ),
    )

    def clean_since(self):
        since = self.cleaned_data["since"]
        if since > timezone.now():
            raise forms.ValidationError(gettext("Choose a moment in the past."))
        return since


class EndpointAction:
    """One of an endpoint's buttons: it opens a page that says what will happen, whose
    own button (with the form's fields, if any) does it."""

    def __init__(self, *, name, title, explanation, button, form_class=None):
        self.name, self.title, self.explanation, self.button = name, title, explanation, button
        self.form_class = form_class


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = (
        "url",
        "store",
        "events",
        "state",
        "failing_since",
        "last_delivery",
    )
    list_filter = ("store", "is_enabled", "disabled_because")
    search_fields = ("url", "description")
    list_select_related = ("store",)
    change_list_template = "admin/webhooks/endpoint/change_list.html"
    change_form_template = "admin/webhooks/endpoint/change_form.html"
    state_fields = (
        "masked_secret",
        "previous_secret_until",
        "state",
        "disabled_at",
        "failing_since",
        "created_at",
    )

    def get_queryset(self, request):
        last = Delivery.objects.filter(endpoint=OuterRef("pk")).order_by("-id")
        return (
            super().get_queryset(request).annotate(last_status=Subquery(last.values("status")[:1]))
        )

    def get_fieldsets(self, request, obj=None):
        subscription = ("store", "url", "description", "event_types", "include_phone")
        if obj is None:
            return [(None, {"fields": subscription})]
        return [
            (None, {"fields": subscription}),
            (_("Signing and state"), {"fields": self.state_fields}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # A store's endpoint stays the store's: another store's needs its own endpoint.
        return ("store", *self.state_fields)

    def has_delete_permission(self, request, obj=None):
        # Its deliveries are the log of what was sent: switch an endpoint off instead.
        return False

    @admin.display(description=_("events subscribed"))
    def events(self, endpoint):
        if set(endpoint.event_types) >= set(EventType.values):
            return gettext("all events")
        return ", ".join(str(EventType(value).label) for value in endpoint.event_types)

    @admin.display(description=_("state"), ordering="is_enabled")
    def state(self, endpoint):
        if endpoint.is_enabled:
            return format_html("{} {}", yes_no_icon(True), gettext("enabled"))
        return format_html(
            "{} {}: {}",
            yes_no_icon(False),
            gettext("disabled"),
            endpoint.get_disabled_because_display() or "-",
        )

    @admin.display(description=_("last delivery"))
    def last_delivery(self, endpoint):
        status = getattr(endpoint, "last_status", None)
        return Delivery.Status(status).label if status else gettext("none yet")

    @admin.display(description=_("signing secret"))
    def masked_secret(self, endpoint):
        return format_html(
            '{}<div class="help">{}</div>',
            code(MASKED_SECRET),
            gettext(
                "The secret is shown once, when the endpoint is created or its secret rotated. "
                "Lost it? Rotate the secret."
            ),
        )

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        created = endpoint_create(
            store=data["store"],
            url=data["url"],
            event_types=data["event_types"],
            include_phone=data["include_phone"],
            description=data["description"],
        )
        # The admin logs the addition of `obj` and goes on to its page.
        obj.pk, obj.secret = created.pk, created.secret
        self._keep_new_secret(request, created)

    def response_add(self, request, obj, post_url_continue=None):
        # To the endpoint's page, which shows the secret, whichever button saved it.
        return HttpResponseRedirect(self._endpoint_url(obj))

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "stopped_notices": stopped_notices()}
        return super().changelist_view(request, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["new_secrets"] = self._take_new_secrets(request, endpoint=obj)
            context["endpoint_buttons"] = self._buttons(request, obj)
            if not obj.is_enabled and obj.disabled_because in SYSTEM_REASONS:
                context["stopped_notice"] = stopped_notice(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _buttons(self, request, endpoint) -> list[tuple[str, str]]:
        if not request.user.has_perm(MANAGE_PERMISSION):
            return []
        names = ["rotate", "disable" if endpoint.is_enabled else "enable", "resend_failed"]
        if endpoint.is_enabled:
            names.insert(1, "test")
        return [
            (
                reverse(f"admin:webhooks_endpoint_{name}", args=[endpoint.pk]),
                self.actions_by_name()[name].title,
            )
            for name in names
        ]

    @staticmethod
    def actions_by_name() -> dict[str, EndpointAction]:
        overlap = int(PREVIOUS_SECRET_VALID_FOR.total_seconds() // 3600)
        actions = [
            EndpointAction(
                name="rotate",
                title=_("Rotate the signing secret"),
                explanation=[
                    gettext(
                        "A new secret signs every delivery from now on; it is shown once, on the "
                        "next page. Put it into the receiver's settings."
                    ),
                    gettext(
                        "For %(hours)d hours each delivery carries a second signature made with "
                        "the current secret, so the receiver keeps working until then. Rotating "
                        "again within that time ends the current secret at once."
                    )
                    % {"hours": overlap},
                ],
                button=_("Rotate the secret"),
            ),
            EndpointAction(
                name="test",
                title=_("Send a test event"),
                explanation=[
                    gettext(
                        "A test event goes to this endpoint only, signed as any other, with no "
                        "member. Its delivery shows whether the endpoint answered."
                    )
                ],
                button=_("Send a test event"),
            ),
            EndpointAction(
                name="disable",
                title=_("Disable the endpoint"),
                explanation=[
                    gettext(
                        "Nothing is sent to it until it is enabled again. Then it is sent the "
                        "deliveries that waited and the events it missed meanwhile, each "
                        "member's in order, as long as they are kept (%(days)d days)."
                    )
                    % {"days": settings.WEBHOOKS_KEEP_DAYS}
                ],
                button=_("Disable"),
            ),
            EndpointAction(
                name="enable",
                title=_("Enable the endpoint"),
                explanation=[
                    gettext(
                        "Deliveries start again with those that waited, then the events it "
                        "missed while it was disabled, each member's in order. Its record of "
                        "failing is cleared: it has 3 days again before failures disable it."
                    ),
                    gettext(
                        "Deliveries that failed stay failed: send them again with “Resend failed "
                        "deliveries”."
                    ),
                ],
                button=_("Enable"),
            ),
            EndpointAction(
                name="resend_failed",
                title=_("Resend failed deliveries"),
                explanation=[
                    gettext(
                        "Deliveries to this endpoint that failed since the moment you choose are "
                        "tried again from the start, each with its own event id, so the receiver "
                        "can tell a delivery it had already."
                    ),
                    gettext(
                        "A resent event arrives after events that came later: the receiver "
                        "orders a member's events by their sequence number."
                    ),
                ],
                button=_("Resend"),
                form_class=ResendFailedForm,
            ),
        ]
        return {action.name: action for action in actions}

    def get_urls(self):
        def action_url(name):
            def view(request, object_id):
                return self._action_view(request, object_id, name)

            return path(
                f"<path:object_id>/{name.replace('_', '-')}/",
                self.admin_site.admin_view(view),
                name=f"webhooks_endpoint_{name}",
            )

        return [*(action_url(name) for name in self.actions_by_name()), *super().get_urls()]

    def _action_view(self, request, object_id, name):
        if not request.user.has_perm(MANAGE_PERMISSION):
            raise PermissionDenied
        endpoint = self.get_object(request, unquote(object_id))
        if endpoint is None:
            raise Http404
        action = self.actions_by_name()[name]
        form = None
        if action.form_class:
            initial = {
                "since": timezone.localtime(self._resend_from(endpoint)).replace(
                    second=0, microsecond=0
                )
            }
            form = action.form_class(request.POST or None, initial=initial)
        if request.method == "POST" and (form is None or form.is_valid()):
            self._act(request, endpoint, name, form)
            return HttpResponseRedirect(self._endpoint_url(endpoint))
        context = {
            **self.admin_site.each_context(request),
            "title": action.title,
            "subtitle": str(endpoint),
            "opts": self.opts,
            "endpoint": endpoint,
            "endpoint_url": self._endpoint_url(endpoint),
            "action": action,
            "form": form,
        }
        return TemplateResponse(request, "admin/webhooks/endpoint/action.html", context)

    @staticmethod
    def _resend_from(endpoint):
        """The start of the receiver's trouble, as far as it is known; else a day ago."""
        return endpoint.failing_since or endpoint.disabled_at or timezone.now() - timedelta(days=1)

    def _act(self, request, endpoint, name, form) -> None:
        staff_user = request.user
        if name == "rotate":
            endpoint = endpoint_secret_rotate(endpoint=endpoint, staff_user=staff_user)
            self._keep_new_secret(request, endpoint)
        elif name == "enable":
            missed = endpoint_enable(endpoint=endpoint, staff_user=staff_user)
            messages.success(
                request,
                ngettext(
                    "The endpoint is enabled; %(count)d event it missed will be sent.",
                    "The endpoint is enabled; %(count)d events it missed will be sent.",
                    missed,
                )
                % {"count": missed},
            )
        elif name == "disable":
            endpoint_disable(endpoint=endpoint, staff_user=staff_user)
            messages.success(request, gettext("The endpoint is disabled: nothing is sent to it."))
        elif name == "test":
            try:
                event = endpoint_test_send(endpoint=endpoint, staff_user=staff_user)
            except AppError as refusal:
                messages.error(request, str(refusal.message))
            else:
                messages.success(
                    request,
                    gettext("Test event %(id)s is on its way; its delivery is in the log.")
                    % {"id": event.webhook_id},
                )
        else:
            count = deliveries_resend_failed(
                endpoint=endpoint, since=form.cleaned_data["since"], staff_user=staff_user
            )
            messages.success(
                request,
                ngettext(
                    "%(count)d failed delivery will be sent again.",
                    "%(count)d failed deliveries will be sent again.",
                    count,
                )
                % {"count": count},
            )

    def _endpoint_url(self, endpoint) -> str:
        return reverse("admin:webhooks_endpoint_change", args=[endpoint.pk])

    def _keep_new_secret(self, request, endpoint) -> None:
        waiting = request.session.get(NEW_SECRETS_SESSION_KEY, [])
        request.session[NEW_SECRETS_SESSION_KEY] = [*waiting, [endpoint.pk, endpoint.secret]]

    def _take_new_secrets(self, request, *, endpoint) -> list[str]:
        """The endpoint's new secrets, which leave the session as they are shown."""
        waiting = request.session.get(NEW_SECRETS_SESSION_KEY, [])
        secrets = [secret for endpoint_id, secret in waiting if endpoint_id == endpoint.pk]
        if secrets:
            request.session[NEW_SECRETS_SESSION_KEY] = [p for p in waiting if p[0] != endpoint.pk]
        return secrets


class AttemptInline(ReadOnlyInline):
    model = Attempt
    fields = ("started_at", "duration_ms", "status_code", "error_shown", "answer_start")
    readonly_fields = fields
    show_change_link = False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("error"))
    def error_shown(self, attempt):
        return code(attempt.error)

    @admin.display(description=_("start of the answer"))
    def answer_start(self, attempt):
        excerpt = attempt.response_excerpt
        if len(excerpt) > EXCERPT_SHOWN:
            excerpt = excerpt[:EXCERPT_SHOWN] + "…"
        return code(excerpt)


class EventTypeFilter(admin.SimpleListFilter):
    title = pgettext_lazy("webhook", "event type")
    parameter_name = "type"
    field = "type"

    def lookups(self, request, model_admin):
        return [*EventType.choices, (TEST_EVENT_TYPE, _("test event"))]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(**{self.field: self.value()})


class DeliveryEventTypeFilter(EventTypeFilter):
    field = "event__type"


class MemberColumnsMixin:
    @admin.display(description=_("member"))
    def member_link(self, row):
        member = row.member if isinstance(row, Event) else row.event.member
        if member is None:
            return "-"
        url = reverse("admin:loyalty_member_change", args=[member.pk])
        return format_html('<a href="{}">{}</a>', url, member_label(member))


@admin.register(Delivery)
class DeliveryAdmin(MemberColumnsMixin, ReadOnlyAdmin):
    list_display = (
        "created_at",
        "type_shown",
        "status",
        "last_http_status",
        "tries",
        "next_try",
        "member_link",
        "sequence_shown",
        "endpoint",
        "webhook_id_shown",
    )
    list_filter = ("endpoint", "status", DeliveryEventTypeFilter)
    search_fields = ("=event__webhook_id",)
    search_help_text = _("An event's id, exactly as the receiver was sent it.")
    list_select_related = ("event__member", "endpoint")
    ordering = ("-id",)
    fields = (
        "event_link",
        "type_shown",
        "member_link",
        "sequence_shown",
        "endpoint",
        "status",
        "tries",
        "next_try",
        "created_at",
        "finished_at",
    )
    readonly_fields = fields
    inlines = [AttemptInline]
    actions = ("resend_selected",)
    change_form_template = "admin/webhooks/delivery/change_form.html"

    def get_queryset(self, request):
        last = Attempt.objects.filter(delivery=OuterRef("pk")).order_by("-started_at", "-id")
        return (
            super()
            .get_queryset(request)
            .annotate(last_status_code=Subquery(last.values("status_code")[:1]))
        )

    def has_resend_permission(self, request):
        return request.user.has_perm(MANAGE_PERMISSION)

    @admin.display(description=pgettext_lazy("webhook", "event type"), ordering="event__type")
    def type_shown(self, delivery):
        return event_type_label(delivery.event.type)

    # The delivery's own copy of the event's number has no name of its own.
    @admin.display(description=Event._meta.get_field("sequence").verbose_name, ordering="sequence")
    def sequence_shown(self, delivery):
        return delivery.sequence if delivery.sequence is not None else "-"

    @admin.display(description=_("event id"))
    def webhook_id_shown(self, delivery):
        return code(delivery.event.webhook_id)

    @admin.display(description=pgettext_lazy("webhook", "event"))
    def event_link(self, delivery):
        url = reverse("admin:webhooks_event_change", args=[delivery.event_id])
        return format_html('<a href="{}">{}</a>', url, code(delivery.event.webhook_id))

    @admin.display(description=_("next try at"), ordering="next_try_at")
    def next_try(self, delivery):
        if delivery.status != Delivery.Status.PENDING:
            return "-"
        return timezone.localtime(delivery.next_try_at).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description=_("last HTTP status"))
    def last_http_status(self, delivery):
        return getattr(delivery, "last_status_code", None) or "-"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        delivery = self.get_object(request, unquote(object_id))
        if delivery is not None and self.has_resend_permission(request):
            extra_context = {
                **(extra_context or {}),
                "resend_url": reverse("admin:webhooks_delivery_resend", args=[delivery.pk])
                if delivery.status == Delivery.Status.FAILED
                else None,
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        resend = path(
            "<path:object_id>/resend/",
            self.admin_site.admin_view(self.resend_view),
            name="webhooks_delivery_resend",
        )
        return [resend, *super().get_urls()]

    def resend_view(self, request, object_id):
        if not self.has_resend_permission(request):
            raise PermissionDenied
        delivery = self.get_object(request, unquote(object_id))
        if delivery is None:
            raise Http404
        if request.method == "POST":
            self._resend(request, [delivery])
        return HttpResponseRedirect(reverse("admin:webhooks_delivery_change", args=[delivery.pk]))

    @admin.action(description=_("Resend the selected failed deliveries"), permissions=["resend"])
    def resend_selected(self, request, queryset):
        self._resend(request, queryset.order_by("pk"))

    def _resend(self, request, deliveries) -> None:
        resent = sum(delivery_resend(delivery=d, staff_user=request.user) for d in deliveries)
        skipped = len(deliveries) - resent
        if resent:
            self.message_user(
                request,
                ngettext(
                    "%(count)d delivery will be sent again from its first try.",
                    "%(count)d deliveries will be sent again from their first try.",
                    resent,
                )
                % {"count": resent},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d delivery had not failed and was left as it is: only failed "
                    "deliveries are sent again.",
                    "%(count)d deliveries had not failed and were left as they are: only "
                    "failed deliveries are sent again.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = ("endpoint", "status", "tries", "finished_at")
    readonly_fields = fields
    verbose_name_plural = _("deliveries of this event")

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(MemberColumnsMixin, ReadOnlyAdmin):
    list_display = ("created_at", "type_shown", "event_id", "member_link", "sequence")
    list_filter = (EventTypeFilter,)
    search_fields = ("=webhook_id",)
    search_help_text = DeliveryAdmin.search_help_text
    list_select_related = ("member",)
    ordering = ("-id",)
    fields = ("event_id", "type_shown", "member_link", "sequence", "created_at", "data_shown")
    readonly_fields = fields
    inlines = [DeliveryInline]

    @admin.display(description=_("type"), ordering="type")
    def type_shown(self, event):
        return event_type_label(event.type)

    @admin.display(description=_("event id"), ordering="webhook_id")
    def event_id(self, event):
        return code(event.webhook_id)

    @admin.display(description=_("data"))
    def data_shown(self, event):
        data = json.dumps(event.data, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html('<pre translate="no">{}</pre>', data)
