"""Readers of each agency's files as published: one module per format.

Each reader validates its files once against its pandera schema and returns
``(records, quarantine)``; see docs/data-contract.md.
"""

__all__ = ["ambulance", "areas", "council", "istv", "police_uk"]
