"""Deterministic workflow code: lead-to-cash, discount approval and their building blocks.

Nothing here performs I/O or imports a CRM SDK; effects live in `activities/`.
"""
