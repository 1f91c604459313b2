"""Data operations: audited stage normalization, stage constraints, backups, restores and verification."""
