"""What drf-spectacular's schema needs besides the serializers: names a generated client reads
well, and the password length Django's validators ask for."""

from django.contrib.auth.password_validation import (
    MinimumLengthValidator,
    get_default_password_validators,
)

INPUT_SUFFIX = "Input"
REQUEST_SUFFIX = "Request"
SCHEMA_REF = "#/components/schemas/"


def name_input_components_as_their_serializers(result, generator, request, public):
    """drf-spectacular's COMPONENT_SPLIT_REQUEST adds "Request" to the component of a request
    body, so that a serializer read both ways has one component per direction. Ours are
    PurchaseInput and PurchaseOutput: the name says the direction already, and a generated
    client's `PurchaseInputRequest` would only stutter. Such a component keeps its serializer's
    name."""
    schemas = result.get("components", {}).get("schemas", {})
    renamed = {
        name: name.removesuffix(REQUEST_SUFFIX)
        for name in schemas
        if name.endswith(INPUT_SUFFIX + REQUEST_SUFFIX)
        and name.removesuffix(REQUEST_SUFFIX) not in schemas
    }
    if not renamed:
        return result
    for old, new in renamed.items():
        schemas[new] = schemas.pop(old)
    result["components"]["schemas"] = dict(sorted(schemas.items()))
    _replace_refs(result, {SCHEMA_REF + old: SCHEMA_REF + new for old, new in renamed.items()})
    return result


def _replace_refs(node, refs: dict) -> None:
    if isinstance(node, dict):
        if node.get("$ref") in refs:
            node["$ref"] = refs[node["$ref"]]
        for value in node.values():
            _replace_refs(value, refs)
    elif isinstance(node, list):
        for value in node:
            _replace_refs(value, refs)


def password_min_length(result, generator, request, public):
    """drf-spectacular writes minLength 1 over the schema of every CharField a request must not
    leave blank, a password's included; a password is as long as the validators ask."""
    min_length = max(
        (
            validator.min_length
            for validator in get_default_password_validators()
            if isinstance(validator, MinimumLengthValidator)
        ),
        default=1,
    )
    for component in result.get("components", {}).get("schemas", {}).values():
        for field in component.get("properties", {}).values():
            if field.get("format") == "password":
                field["minLength"] = min_length
    return result
