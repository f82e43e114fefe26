"""Sender trust: what a message's sender may claim, decided in one place.

`evidence` reads the Authentication-Results headers that the organisation's own
MTA added (RFC 8601), `verdict` decides whether the From address is proven,
and `entitlement` decides what the agreement promises this sender.
"""
