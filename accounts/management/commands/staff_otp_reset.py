from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.phones import InvalidPhone, mask_phone, normalize_phone
from accounts.staff_otp import staff_otp_reset


class Command(BaseCommand):
    help = (
        "Reset a staff member's two-factor login, as when they lost their phone and their "
        "recovery codes: their authenticator app and recovery codes stop working, and they "
        "set it up again at their next login. For when no other superuser can do it in admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("phone", help="the staff member's phone, E.164 or national format")

    def handle(self, *args, phone, **options):
        try:
            phone = normalize_phone(phone)
        except InvalidPhone:
            raise CommandError("That is not a mobile phone number.") from None
        user = User.objects.filter(phone=phone).first()
        if user is None:
            raise CommandError(f"No account has the phone {mask_phone(phone)}.")
        if staff_otp_reset(user=user):
            self.stdout.write(
                f"Reset the two-factor login of {mask_phone(phone)}: they set it up again "
                "at their next login."
            )
        else:
            self.stdout.write(f"{mask_phone(phone)} had no two-factor login; nothing to reset.")
