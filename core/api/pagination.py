from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.response import Response

from core.converters import row_id
from core.errors import AppError


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
        # The position is a row id; anything else is a forged cursor.
        if cursor is not None and cursor.position is not None and row_id(cursor.position) is None:
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


class NewestFirstRows(NewestFirstCursor):
    """The same pages and cursors as NewestFirstCursor, over rows a plain query reads:
    `fetch(before_id=…, limit=…)` answers the rows (dicts with an "id") below that id."""

    def paginate_rows(self, request, fetch) -> list[dict]:
        self.base_url = request.build_absolute_uri()
        before_id = self._position(self.decode_cursor(request))
        rows = fetch(before_id=before_id, limit=self.page_size + 1)
        page = rows[: self.page_size]
        self.next_position = str(page[-1]["id"]) if len(rows) > self.page_size else None
        return page

    @staticmethod
    def _position(cursor) -> int | None:
        """The id the page starts below; this API only hands out forward cursors on ids."""
        if cursor is None or cursor.position is None:
            return None
        if cursor.reverse or cursor.offset:
            raise _invalid_cursor()
        return row_id(cursor.position)

    def get_next_link(self):
        if self.next_position is None:
            return None
        return self.encode_cursor(Cursor(offset=0, reverse=False, position=self.next_position))


def _invalid_cursor() -> AppError:
    return AppError(
        "validation_error",
        _("The cursor is not valid; use the `next` link of the previous page."),
        details={"cursor": ["invalid"]},
    )
