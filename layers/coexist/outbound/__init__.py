"""Sending: what a caller may ask for, the policy that may refuse it, pacing, and Meta's answers."""
