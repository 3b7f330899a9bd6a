"""YAML reading for the emulator's files, with YAML 1.2 booleans.

PyYAML follows YAML 1.1, where `on`, `off`, `yes` and `no` are booleans: a script rule's `on:` key would turn
into `True` and a button id `yes` into a bool. Only `true`/`false` are booleans here.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["YamlError", "load_yaml"]

_BOOL_TAG = "tag:yaml.org,2002:bool"


class YamlError(ValueError):
    pass


def _loader() -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    return Loader


def load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        raise YamlError(f"{source}: not valid YAML: {exc}") from None
