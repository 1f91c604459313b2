"""The stage-usage ledger: recording validations per client (ledger, flush) and reading them back."""
