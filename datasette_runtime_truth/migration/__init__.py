"""Bringing a turns.db to the current shape: the batched migration, its preview, and
the opt-in startup hook."""
