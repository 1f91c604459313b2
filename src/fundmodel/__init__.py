"""fundmodel: venture-capital fund modeling with a safe rollout of strict stage validation."""

__version__ = "0.1.0"
