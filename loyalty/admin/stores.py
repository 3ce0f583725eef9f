"""Stores and their API keys. A key is shown once, on the store's page right after it
is issued, and only its prefix afterwards; revoking one is final and asks first.

A new key waits for that page in the session, kept on the server, and the page takes it
out as it shows it. Not in a message: Django keeps messages in a cookie that is signed,
not encrypted, so whoever sees the cookie reads the key. Admin pages are sent with
`Cache-Control: no-store` (the admin site's `never_cache`), so no cache keeps the page."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyInline
from loyalty.models import Store, StoreAPIKey
from loyalty.services.stores import store_api_key_issue, store_api_key_revoke

KEY_ADD_PERMISSION = "loyalty.add_storeapikey"
KEY_REVOKE_PERMISSION = "loyalty.change_storeapikey"
# The name `store_create` gives a store's first key; the add form issues the same.
FIRST_KEY_NAME = "default"
# Session entry of the keys issued and not shown yet: [store id, key] pairs.
NEW_KEYS_SESSION_KEY = "loyalty:new-api-keys"


class StoreAPIKeyInline(ReadOnlyInline):
    model = StoreAPIKey
    # The key model's own fields are named, and explained, in English by its library.
    fields = ("key_name", "key_prefix", "created_at", "last_use", "state", "revoke_link")
    readonly_fields = fields
    show_change_link = False
    verbose_name_plural = _("API keys (only the prefix is kept in the clear)")

    def get_fields(self, request, obj=None):
        if request.user.has_perm(KEY_REVOKE_PERMISSION):
            return self.fields
        return tuple(field for field in self.fields if field != "revoke_link")

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description=pgettext_lazy("name of a thing", "name"))
    def key_name(self, key):
        return key.name

    @admin.display(description=_("prefix"))
    def key_prefix(self, key):
        return key.prefix

    @admin.display(description=_("created at"))
    def created_at(self, key):
        return local_time(key.created)

    @admin.display(description=_("last used"))
    def last_use(self, key):
        return local_time(key.last_used_at) if key.last_used_at else gettext("never")

    @admin.display(description=_("state"))
    def state(self, key):
        return gettext("revoked") if key.revoked else gettext("in use")

    @admin.display(description="")
    def revoke_link(self, key):
        if key.revoked or not key.pk:
            return ""
        url = reverse("admin:loyalty_store_key_revoke", args=[key.store_id, key.prefix])
        return format_html('<a class="deletelink" href="{}">{}</a>', url, gettext("Revoke…"))


class KeyCreateForm(forms.Form):
    name = forms.CharField(
        label=_("Key name"),
        max_length=StoreAPIKey._meta.get_field("name").max_length,
        help_text=_(
            "Where the key will be used, e.g. “POS counter 2”: the key list shows it, "
            "so you know which key to revoke later."
        ),
    )


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ("name", "keys_in_use", "last_key_use", "created_at")
    search_fields = ("name",)
    fields = ("name", "created_at")
    inlines = [StoreAPIKeyInline]
    change_form_template = "admin/loyalty/store/change_form.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                keys_in_use=Count("api_keys", filter=Q(api_keys__revoked=False)),
                last_key_use=Max("api_keys__last_used_at"),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        return ("created_at",) if obj else ()

    def get_fields(self, request, obj=None):
        return self.fields if obj else ("name",)

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    @admin.display(description=_("keys in use"), ordering="keys_in_use")
    def keys_in_use(self, store):
        return store.keys_in_use

    @admin.display(description=_("last API use"), ordering="last_key_use")
    def last_key_use(self, store):
        return store.last_key_use or gettext("never")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/keys/new/",
                view(self.key_create_view),
                name="loyalty_store_key_create",
            ),
            path(
                "<path:object_id>/keys/<str:prefix>/revoke/",
                view(self.key_revoke_view),
                name="loyalty_store_key_revoke",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_create_key"] = request.user.has_perm(KEY_ADD_PERMISSION)
        if obj is not None:
            context["new_keys"] = self._take_new_keys(request, store=obj)
        if add:
            context["first_key_note"] = (
                _("Saving creates the store's first API key and shows it once.")
                if context["can_create_key"]
                else _("You may not create API keys: a manager can create the store's first.")
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # The admin's add view saves in one transaction: the store never exists without it.
        if not change and request.user.has_perm(KEY_ADD_PERMISSION):
            key = store_api_key_issue(store=obj, name=FIRST_KEY_NAME)
            self._keep_new_key(request, store=obj, key=key)

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        # To the store's page, which shows its first key, whichever button saved it.
        if IS_POPUP_VAR not in request.POST and self._new_keys_of(request, store=obj):
            return HttpResponseRedirect(self._store_url(obj))
        return response

    def key_create_view(self, request, object_id):
        store = self._store_for(request, object_id, permission=KEY_ADD_PERMISSION)
        form = KeyCreateForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            name = form.cleaned_data["name"]
            key = store_api_key_issue(store=store, name=name)
            self.log_change(request, store, gettext("Created API key “%(name)s”.") % {"name": name})
            self._keep_new_key(request, store=store, key=key)
            return HttpResponseRedirect(self._store_url(store))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Create an API key for %(store)s") % {"store": store.name},
            "opts": self.opts,
            "store": store,
            "form": form,
            "store_url": self._store_url(store),
        }
        return TemplateResponse(request, "admin/loyalty/store/key_create.html", context)

    def key_revoke_view(self, request, object_id, prefix):
        store = self._store_for(request, object_id, permission=KEY_REVOKE_PERMISSION)
        key = StoreAPIKey.objects.filter(store=store, prefix=prefix).first()
        if key is None:
            raise Http404
        if request.method == "POST":
            if store_api_key_revoke(api_key=key):
                message = gettext(
                    "Revoked API key %(prefix)s… (“%(name)s”): storefronts using it are refused "
                    "from now on."
                ) % {"prefix": key.prefix, "name": key.name}
                self.log_change(request, store, message)
                messages.success(request, message)
            else:
                messages.info(request, gettext("That API key was revoked already."))
            return HttpResponseRedirect(self._store_url(store))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Revoke an API key of %(store)s") % {"store": store.name},
            "opts": self.opts,
            "store": store,
            "key": key,
            "store_url": self._store_url(store),
        }
        return TemplateResponse(request, "admin/loyalty/store/key_revoke.html", context)

    def _store_for(self, request, object_id, *, permission: str) -> Store:
        if not request.user.has_perm(permission):
            raise PermissionDenied
        store = self.get_object(request, unquote(object_id))
        if store is None:
            raise Http404
        return store

    def _store_url(self, store: Store) -> str:
        return reverse("admin:loyalty_store_change", args=[store.pk])

    def _keep_new_key(self, request, *, store: Store, key: str) -> None:
        # Several may wait, e.g. keys created in two tabs before either page loaded.
        waiting = request.session.get(NEW_KEYS_SESSION_KEY, [])
        request.session[NEW_KEYS_SESSION_KEY] = [*waiting, [store.pk, key]]

    def _new_keys_of(self, request, *, store: Store) -> list[str]:
        waiting = request.session.get(NEW_KEYS_SESSION_KEY, [])
        return [key for store_id, key in waiting if store_id == store.pk]

    def _take_new_keys(self, request, *, store: Store) -> list[str]:
        """The notices of the store's new keys, which leave the session as they are shown."""
        keys = self._new_keys_of(request, store=store)
        if keys:
            waiting = request.session[NEW_KEYS_SESSION_KEY]
            request.session[NEW_KEYS_SESSION_KEY] = [p for p in waiting if p[0] != store.pk]
        return [new_key_notice(store=store, key=key) for key in keys]


def local_time(moment) -> str:
    """A moment as admin shows dates, in the merchant's time zone: a read-only column of
    an inline would show the datetime's own text, in UTC."""
    return formats.localize(timezone.localtime(moment))


def new_key_notice(*, store: Store, key: str) -> str:
    text = gettext(
        "The new API key of %(store)s is %(key)s. Copy it into the storefront's settings "
        "now: only a hash of it is kept, and it will never be shown again."
    )
    values = {
        "store": escape(store.name),
        "key": format_html('<code class="api-key">{}</code>', key),
    }
    # Safe: the text and the store's name are escaped, the only markup is ours.
    return mark_safe(escape(text) % values)
