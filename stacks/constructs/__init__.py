"""Reusable building blocks of the Coexist stacks."""
