"""Internals of `bridge.config`: YAML reading, `${VAR}` interpolation, error-collecting decoding, checks.

Kept apart so that `bridge.config` stays a readable schema; import the public names from `bridge.config`.
"""

__all__: list[str] = []
