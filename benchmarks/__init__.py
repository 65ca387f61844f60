"""Repeatable measurements of Coexist's hot paths; `make bench` prints them as a table."""
