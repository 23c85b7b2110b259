"""Hydra entry points: enas-search, enas-derive, enas-train (the only code that sees the config)."""
