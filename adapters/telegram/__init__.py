"""Telegram, through python-telegram-bot: webhook or long polling, every private-chat update, inline keyboards."""

from adapters.telegram.adapter import TelegramAdapter
from adapters.telegram.config import TelegramConfig
from adapters.telegram.limits import RateLimits

__all__ = ["RateLimits", "TelegramAdapter", "TelegramConfig"]
