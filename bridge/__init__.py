"""omnichannel-bridge: connects messengers to the chatbot platform's Omnichannel API.

This module is the public plugin API: everything an adapter author needs is importable from here, and nothing
else in the package is promised to stay stable.
"""

from bridge.adapter import (
    Adapter,
    AdapterContext,
    AdapterError,
    Capabilities,
    FileDownload,
    FileGone,
    InboundCallback,
    KeyValue,
    NotTakenOver,
    PermanentSendError,
    RetryableSendError,
    SendError,
)
from bridge.messages import (
    Button,
    Inbound,
    InboundButton,
    InboundContent,
    InboundFile,
    InboundText,
    Outbound,
    OutboundContent,
    OutboundFile,
    OutboundKeyboard,
    OutboundText,
    Sender,
)

__version__ = "0.1.0"

__all__ = [
    "Adapter",
    "AdapterContext",
    "AdapterError",
    "Button",
    "Capabilities",
    "FileDownload",
    "FileGone",
    "Inbound",
    "InboundButton",
    "InboundCallback",
    "InboundContent",
    "InboundFile",
    "InboundText",
    "KeyValue",
    "NotTakenOver",
    "Outbound",
    "OutboundContent",
    "OutboundFile",
    "OutboundKeyboard",
    "OutboundText",
    "PermanentSendError",
    "RetryableSendError",
    "SendError",
    "Sender",
    "__version__",
]
