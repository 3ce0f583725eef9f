"""What the schema of the loyalty API needs besides its serializers: the bodies that need
one field or another, which a serializer's `required` cannot say."""

# Component: (keyword, the fields of which one must be sent). "oneOf" also refuses both.
ALTERNATIVES = {
    "RefundInput": ("anyOf", ["amount", "lines"]),
    "RefundLineInput": ("oneOf", ["quantity", "amount"]),
}


def required_alternatives(result, generator, request, public):
    """A refund names its amount or its lines, and a refunded line its units or its money:
    said in the schema, so a generated client and the server agree on what is valid."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, (keyword, fields) in ALTERNATIVES.items():
        if name in schemas:
            schemas[name][keyword] = [{"required": [field]} for field in fields]
    return result
