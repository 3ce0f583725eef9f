from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        from accounts.api.authentication import remembered_users
        from accounts.models import User

        # A new password, a deactivation or an erasure must not leave a user remembered here.
        for signal in (post_save, post_delete):
            signal.connect(remembered_users.forget_all, sender=User, dispatch_uid="forget-users")
