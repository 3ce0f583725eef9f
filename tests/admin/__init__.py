"""Admin screens through Django's test client, as clerks, managers and superusers
use them. Helpers shared by the admin tests live here."""

from django.contrib.auth.models import Permission

from accounts.models import User

# What a shop clerk and a shop manager are given; a superuser has every permission.
CLERK_PERMISSIONS = ("view_member", "view_ledgerentry", "view_lot", "adjust_points")
MANAGER_PERMISSIONS = (*CLERK_PERMISSIONS, "view_adjustment", "approve_adjustment")


def staff_member(phone: str, *codenames: str, name: str = "") -> User:
    """A staff user with the given loyalty permissions."""
    user = User.objects.create_user(phone=phone, is_staff=True, name=name)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="loyalty", codename__in=codenames)
    )
    assert user.user_permissions.count() == len(codenames)
    return user


def messages_of(response) -> list[str]:
    """The messages the admin shows after a redirect or on the page."""
    return [str(message) for message in response.context["messages"]]
