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
    FileTooLarge,
    InboundCallback,
    KeyValue,
    NotTakenOver,
    PermanentSendError,
    RetryableSendError,
    SendError,
    stream_download,
)
from bridge.fetch import FetchError, FetchFailed, FetchRefused, SafeFetcher
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
from bridge.webhook import WebhookHandler, WebhookRequest, webhook_route

__version__ = "0.1.0"

__all__ = [
    "Adapter",
    "AdapterContext",
    "AdapterError",
    "Button",
    "Capabilities",
    "FetchError",
    "FetchFailed",
    "FetchRefused",
    "FileDownload",
    "FileGone",
    "FileTooLarge",
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
    "SafeFetcher",
    "SendError",
    "Sender",
    "WebhookHandler",
    "WebhookRequest",
    "__version__",
    "stream_download",
    "webhook_route",
]
