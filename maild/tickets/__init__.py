"""Tickets: numbers, subject tags, threading and the processing service."""
