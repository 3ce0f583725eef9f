import re

# ASCII digits only: str.isdigit() also takes "²", which int() refuses, and both take "٣"
# and "５". Eighteen digits stay below the largest bigint.
ROW_ID = re.compile(r"[0-9]{1,18}")


def row_id(text: str | None) -> int | None:
    """`text` as a database id, or None when it is not one."""
    if text is None or not ROW_ID.fullmatch(text):
        return None
    return int(text)


class RowIdConverter:
    """A database id in a URL: digits only, short enough for a bigint, so an
    absurd id is a 404 and never a database error."""

    regex = ROW_ID.pattern

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)
