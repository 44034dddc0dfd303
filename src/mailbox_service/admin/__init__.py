"""Operator API and CLI support: notification statistics, failed notifications, resend."""
