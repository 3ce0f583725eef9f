from django.apps import AppConfig
from django.db.models.signals import post_save
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Loyalty")

    def ready(self):
        from loyalty.models import StoreAPIKey
        from loyalty.services.stores import remembered_keys

        # A key saved with revoked or expiry changed must not stay remembered here.
        post_save.connect(
            remembered_keys.forget_all, sender=StoreAPIKey, dispatch_uid="forget-keys"
        )
