"""An omnichannel-bridge adapter for Chirp, an imaginary HTTP messenger: a template for real adapters."""

from omnichannel_example_adapter.adapter import ChirpAdapter, ChirpConfig

__all__ = ["ChirpAdapter", "ChirpConfig"]
