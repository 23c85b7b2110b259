"""enas: neural architecture search with weight sharing (ENAS), NAS-RL and classical strategies."""

__version__ = "0.1.0"
