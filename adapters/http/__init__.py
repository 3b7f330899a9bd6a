"""The generic HTTP adapter: a company's own system talks JSON to the bridge, signed both ways."""

from adapters.http.adapter import INBOUND_PATH, HttpAdapter
from adapters.http.config import HttpConfig

__all__ = ["INBOUND_PATH", "HttpAdapter", "HttpConfig"]
