"""Coexist's runtime library: domain rules, models and repositories shared by every function."""
