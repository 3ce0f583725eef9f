"""docker-compose.yml as the tests read it: a service's command and the environment the
stack gives it, with `${VAR}`, `${VAR:-default}` and `${VAR:?message}` resolved as
Compose resolves them from .env, so the tests run what the stack runs."""

import re
from pathlib import Path

import yaml

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yml"
_EXPRESSION = re.compile(r"(?P<name>\w+)(?:(?P<operator>:?[-?])(?P<argument>.*))?", re.DOTALL)


class MissingVariable(Exception):
    """A `${VAR:?message}` whose variable is not set: Compose refuses to start."""


def service(name: str) -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"][name]


def command(name: str, variables: dict[str, str]) -> list[str]:
    return [interpolate(part, variables) for part in service(name)["command"]]


def environment(name: str, variables: dict[str, str]) -> dict[str, str]:
    """What the service's processes get: every variable of .env (its env_file), then
    its `environment`, resolved."""
    resolved = {
        key: interpolate(str(value), variables)
        for key, value in service(name).get("environment", {}).items()
    }
    return variables | resolved


def interpolate(text: str, variables: dict[str, str]) -> str:
    resolved = []
    position = 0
    while position < len(text):
        if text.startswith("$$", position):
            resolved.append("$")
            position += 2
        elif text.startswith("${", position):
            end = _closing_brace(text, position + 2)
            resolved.append(_resolve(text[position + 2 : end], variables))
            position = end + 1
        else:
            resolved.append(text[position])
            position += 1
    return "".join(resolved)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for position in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[position], 0)
        if depth == 0:
            return position
    raise ValueError(f"unclosed ${{ in {text!r}")


def _resolve(expression: str, variables: dict[str, str]) -> str:
    match = _EXPRESSION.fullmatch(expression)
    if match is None:
        raise ValueError(f"cannot read ${{{expression}}}")
    name, operator, argument = match.group("name", "operator", "argument")
    value = variables.get(name)
    unset = value is None or (value == "" and operator is not None and operator[0] == ":")
    if operator is None:
        return value or ""
    if not unset:
        return value
    if operator.endswith("?"):
        raise MissingVariable(f"{name}: {interpolate(argument, variables)}")
    return interpolate(argument, variables)
