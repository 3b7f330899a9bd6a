"""Fit an agent's reply to what a messenger can show, before it is queued.

Doing this before the queue (not in the adapter at send time) makes every part its own queue item, so the parts
of a long text are retried and ordered like any other messages, and an adapter only ever sees messages it can send.
"""

from __future__ import annotations

from bridge.adapter import Capabilities
from bridge.messages import Button, OutboundContent, OutboundFile, OutboundKeyboard, OutboundText
from bridge.protocol import FileOperatorReply, KeyboardReply, OperatorReply, Reply, UnknownReply
from bridge.text import split_text

__all__ = ["reply_contents"]


def _texts(text: str, caps: Capabilities) -> list[OutboundContent]:
    if not text:
        return []
    if caps.max_text_length is None:
        return [OutboundText(text)]
    return [OutboundText(part) for part in split_text(text, caps.max_text_length, caps.text_unit)]


def _reflow(rows: list[list[Button]], caps: Capabilities) -> list[list[Button]]:
    """Keep the agent's rows, breaking rows that are too wide; never drop a button silently."""
    out: list[list[Button]] = []
    width = caps.max_buttons_per_row
    for row in rows:
        if not row:
            continue
        if width is None or len(row) <= width:
            out.append(list(row))
        else:
            out.extend(row[i : i + width] for i in range(0, len(row), width))
    return out


def _keyboards(reply: KeyboardReply, caps: Capabilities) -> list[OutboundContent]:
    rows = _reflow(reply.buttons, caps)
    if not rows:
        # A keyboard without buttons is at most its text; messengers refuse an empty keyboard.
        return _texts(reply.text or "", caps)
    if not caps.buttons:
        # Text fallback: list the options so the visitor can answer with one of them.
        lines = [reply.text] if reply.text else []
        lines += [f"• {button.text}" for row in rows for button in row]
        return _texts("\n".join(lines), caps)
    limit = caps.max_buttons
    if limit is None or sum(len(r) for r in rows) <= limit:
        return [OutboundKeyboard(rows=rows, text=reply.text)]
    # More buttons than one keyboard may hold: further keyboards, each with the rows that fit.
    parts: list[OutboundContent] = []
    current: list[list[Button]] = []
    count = 0
    for row in rows:
        if count + len(row) > limit and current:
            parts.append(OutboundKeyboard(rows=current, text=reply.text if not parts else None))
            current, count = [], 0
        current.append(row)
        count += len(row)
    if current:
        parts.append(OutboundKeyboard(rows=current, text=reply.text if not parts else None))
    return parts


def reply_contents(reply: Reply, caps: Capabilities) -> list[OutboundContent]:
    """The messages one `/send_message` call becomes, in order. Empty for kinds nothing can be sent for."""
    match reply:
        case OperatorReply(text=text):
            return _texts(text, caps)
        case KeyboardReply():
            return _keyboards(reply, caps)
        case FileOperatorReply(data=data):
            if caps.files:
                return [OutboundFile(url=data.url, name=data.name, content_type=data.type, size=data.size)]
            label = data.name or "file"
            return _texts(f"{label}: {data.url}", caps)
        case UnknownReply():
            return []
