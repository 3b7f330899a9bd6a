"""Reading the YAML text and interpolating `${VAR}` references, collecting every problem, not the first."""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from bridge._config.problems import KeyPath, Problem, format_path

__all__ = ["Interpolated", "YamlProblems", "interpolate", "read_yaml"]

_MERGE_TAG = "tag:yaml.org,2002:merge"
# `$${` is checked first so that it wins over the `${` inside it.
_REFERENCE = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)
_SYNTAX_HINT = "write ${NAME} or ${NAME:-default}, and $${ for a literal ${"


class YamlProblems(Exception):
    """The text is not usable YAML; `problems` holds one line per problem with file, line and column."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that records duplicate keys: PyYAML silently keeps the last one, which hides typos."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source
        self.duplicates: list[Problem] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable key: the base class reports it
                continue
            if duplicate:
                mark = key_node.start_mark
                where = f"{self.source}:{mark.line + 1}:{mark.column + 1}"
                self.duplicates.append(Problem(where, f"duplicate key {key!r}"))
        return super().construct_mapping(node, deep=deep)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _yaml_problem(exc: yaml.YAMLError, source: str) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        message = f"invalid YAML: {_one_line(exc.problem or exc.context or 'syntax error')}"
        if exc.context and exc.problem:
            message += f" ({_one_line(exc.context)}"
            if exc.context_mark and exc.context_mark is not mark:
                message += f" at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
            message += ")"
        return Problem(where, message)
    return Problem(source, f"invalid YAML: {_one_line(str(exc))}")


def read_yaml(text: str, source: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document. Syntax errors raise `YamlProblems`; duplicate keys are returned as problems
    so that the rest of the file is still checked."""
    loader = _StrictLoader(text, source)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise YamlProblems([_yaml_problem(exc, source)]) from None
    finally:
        loader.dispose()
    return data, loader.duplicates


@dataclass(slots=True)
class Interpolated:
    """The document with every reference resolved.

    `failed` holds the display paths of values that could not be resolved (they keep their raw text, and any
    later problem about them is noise); `from_env` holds the paths whose text came at least partly from the
    environment, which may be coerced to the number or boolean that the schema expects.
    """

    data: Any
    problems: list[Problem] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    from_env: set[KeyPath] = field(default_factory=set)


def interpolate(data: Any, environ: Mapping[str, str]) -> Interpolated:
    """Resolve `${VAR}` / `${VAR:-default}` in every string value (mapping keys are left alone).

    `:-` follows the shell: the default also applies when the variable is set but empty. The result is a fresh
    tree (YAML aliases are copied), so callers may edit it freely.
    """
    result = Interpolated(data=None)
    result.data = _walk(data, (), environ, result)
    return result


def _walk(value: Any, path: KeyPath, environ: Mapping[str, str], result: Interpolated) -> Any:
    if isinstance(value, dict):
        return {
            key: _walk(item, (*path, key if isinstance(key, str) else str(key)), environ, result)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_walk(item, (*path, index), environ, result) for index, item in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        return _substitute(value, path, environ, result)
    return value


def _substitute(text: str, path: KeyPath, environ: Mapping[str, str], result: Interpolated) -> str:
    problems: list[Problem] = []
    used_env = False

    def replace(match: re.Match[str]) -> str:
        nonlocal used_env
        if match.group(0) == "$${":
            return "${"
        body = match.group("body")
        if body is None:
            problems.append(Problem.at(path, f"unterminated ${{ ({_SYNTAX_HINT})"))
            return match.group(0)
        reference = _BODY.fullmatch(body)
        if reference is None:
            problems.append(Problem.at(path, f"invalid reference ${{{body}}} ({_SYNTAX_HINT})"))
            return match.group(0)
        name, default = reference.group("name"), reference.group("default")
        if default is not None and "${" in default:
            problems.append(
                Problem.at(path, f"nested reference in the default of ${{{name}}} is not supported")
            )
            return match.group(0)
        value = environ.get(name)
        if default is not None and not value:
            used_env = True
            return default
        if value is None:
            problems.append(Problem.at(path, f"environment variable {name} is not set"))
            return match.group(0)
        used_env = True
        return value

    resolved = _REFERENCE.sub(replace, text)
    if problems:
        result.problems.extend(problems)
        result.failed.add(format_path(path))
        return text
    if used_env:
        result.from_env.add(path)
    return resolved
