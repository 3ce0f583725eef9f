from django.core.management.base import CommandError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.phones import InvalidPhone, mask_phone, normalize_phone
from core.errors import AppError
from loyalty.management.base import TranslatedCommand
from loyalty.models import Member
from loyalty.services.erasure import customer_erase


class Command(TranslatedCommand):
    help = _(
        "Erase a customer's personal data: the phone, the account, SMS codes and texts. "
        "The ledger stays under the member's id. Asks first unless --yes."
    )

    def add_arguments(self, parser):
        parser.add_argument("phone", help=gettext("the customer's phone, E.164 or national format"))
        parser.add_argument(
            "--yes", action="store_true", help=gettext("do not ask for confirmation")
        )

    def handle(self, *args, phone, yes=False, **options):
        try:
            phone = normalize_phone(phone)
        except InvalidPhone:
            raise CommandError(gettext("That is not a mobile phone number.")) from None
        member = Member.objects.filter(phone=phone).first()
        if member is None:
            raise CommandError(
                gettext("No member has the phone %(phone)s.") % {"phone": mask_phone(phone)}
            )
        if not yes and not self._confirmed(member, phone):
            raise CommandError(gettext("Nothing erased."))
        try:
            erasure = customer_erase(member_id=member.pk)
        except AppError as refusal:
            raise CommandError(refusal.message) from None
        self.stdout.write(erasure.summary())

    def _confirmed(self, member: Member, phone: str) -> bool:
        question = gettext(
            "Erase the personal data of member #%(id)s (%(phone)s, %(points)s points)? "
            "This cannot be undone. Type 'yes' to go on: "
        ) % {"id": member.pk, "phone": mask_phone(phone), "points": member.balance}
        try:
            return input(question).strip().lower() == "yes"
        except EOFError:
            return False
