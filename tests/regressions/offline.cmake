# Regression tests for the offline commands (issue 12 items 4-8): owned by one change set.
