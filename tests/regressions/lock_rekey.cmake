# Regression tests for the vault lock and key rotation (issue 12 items 2, 10).
