"""Deliver tiktok_events_outbox rows to the TikTok Events API and record receipts."""

__version__ = "0.2.0"
