from datetime import datetime, tzinfo

from django.utils import timezone
from rest_framework.exceptions import NotAuthenticated
from rest_framework.views import APIView

# What DRF's CharField takes, for the schema: no NUL anywhere, and something left once
# str.strip() has taken the whitespace off both ends. The whitespace is spelled out because
# \s means other characters in Python (schemathesis draws from the pattern) than in
# ECMAScript (a generated client checks with it).
_STRIPPED = r"\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NON_BLANK_TEXT_PATTERN = rf"^[^\x00]*[^\x00{_STRIPPED}][^\x00]*$"
NO_NUL_PATTERN = r"^[^\x00]*$"


def local_iso(value: datetime, zone: tzinfo | None = None) -> str:
    """A time as DRF's DateTimeField writes it, in the merchant's zone, for bodies
    built without a serializer. A caller writing a page of times passes the zone it
    looked up once: the lookup costs more than the conversion."""
    if value.tzinfo is None:
        raise ValueError("local_iso() needs an aware datetime")
    text = value.astimezone(zone or timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class ApiView(APIView):
    """Base of every API view: parse with a serializer, refuse bad input as a 400."""

    def parse(self, serializer_class, data=None, *, partial=False):
        serializer = serializer_class(
            data=self.request.data if data is None else data, partial=partial
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def permission_denied(self, request, message=None, code=None):
        # DRF tells a caller no authenticator recognised only that credentials were "not
        # provided"; one who sent a customer token to a store's endpoint, or a key without
        # its prefix, needs to hear what this endpoint takes. The first authenticator says
        # it, as it names the scheme of the WWW-Authenticate header.
        if request.authenticators and not request.successful_authenticator:
            needed = getattr(request.authenticators[0], "credential_needed", None)
            raise NotAuthenticated(needed)
        super().permission_denied(request, message, code)
