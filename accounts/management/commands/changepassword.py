from contextlib import suppress

from django.contrib.auth.management.commands import changepassword

from accounts.phones import InvalidPhone, normalize_phone


class Command(changepassword.Command):
    """Django's changepassword, which finds the account by the exact text it is given,
    taking the phone as people write it: 13900000000 or +8613900000000."""

    def handle(self, *args, **options):
        if options["username"]:
            with suppress(InvalidPhone):  # Django's own message names what was typed
                options["username"] = normalize_phone(options["username"])
        return super().handle(*args, **options)
