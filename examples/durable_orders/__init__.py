"""Runnable example: see README.md."""
