# Regression tests for the filesystem core (issue 12 items 1, 3, 9, 11-17).
