"""Sweeps: many runs trained on this machine N at a time (`pool`)."""
