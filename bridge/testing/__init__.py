"""Helpers for testing the bridge and adapters against real loopback servers."""
