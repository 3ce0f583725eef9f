from django.core.management.base import CommandError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.phones import InvalidPhone, mask_phone, normalize_phone
from accounts.staff_otp import staff_otp_reset
from loyalty.management.base import TranslatedCommand


class Command(TranslatedCommand):
    help = _(
        "Reset a staff member's two-factor login, as when they lost their phone and their "
        "recovery codes: their authenticator app and recovery codes stop working, and they "
        "set it up again at their next login. For when no other superuser can do it in admin."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "phone", help=gettext("the staff member's phone, E.164 or national format")
        )

    def handle(self, *args, phone, **options):
        try:
            phone = normalize_phone(phone)
        except InvalidPhone:
            raise CommandError(gettext("That is not a mobile phone number.")) from None
        user = User.objects.filter(phone=phone).first()
        if user is None:
            raise CommandError(
                gettext("No account has the phone %(phone)s.") % {"phone": mask_phone(phone)}
            )
        if staff_otp_reset(user=user):
            done = gettext(
                "Reset the two-factor login of %(phone)s: they set it up again at their next login."
            )
        else:
            done = gettext("%(phone)s had no two-factor login; nothing to reset.")
        self.stdout.write(done % {"phone": mask_phone(phone)})
