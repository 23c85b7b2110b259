"""Data: text corpora (PTB format) and image datasets, with their batching."""
