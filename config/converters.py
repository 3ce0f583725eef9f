class RowIdConverter:
    """A database id in a URL: digits only, short enough for a bigint, so an
    absurd id is a 404 and never a database error."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)
