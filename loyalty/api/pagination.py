from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from config.errors import AppError


class NewestFirstCursor(CursorPagination):
    """Keyset pages, newest first: no OFFSET, no COUNT, and a page never shifts
    when new entries arrive while the customer scrolls."""

    ordering = "-id"
    page_size = 50

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise _invalid_cursor() from None
        # The position is an entry id; anything else is a forged cursor.
        if cursor is not None and cursor.position is not None and not cursor.position.isdigit():
            raise _invalid_cursor()
        return cursor

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "example": "https://points.example.com/api/v1/me/transactions?cursor=cD05NzU%3D",
                },
            },
        }


def _invalid_cursor() -> AppError:
    return AppError(
        "validation_error",
        _("The cursor is not valid; use the `next` link of the previous page."),
        details={"cursor": ["invalid"]},
    )
