from datetime import datetime

from django.utils import timezone
from rest_framework.views import APIView


def local_iso(value: datetime) -> str:
    """A time as DRF's DateTimeField writes it, in the merchant's zone, for bodies
    built without a serializer."""
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class ApiView(APIView):
    """Base of every API view: parse with a serializer, refuse bad input as a 400."""

    def parse(self, serializer_class, data=None):
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
