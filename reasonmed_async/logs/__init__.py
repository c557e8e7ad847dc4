"""Structured logging: setup, and `reasonmed logs` (tail and filter)."""
