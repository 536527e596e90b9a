"""The agent desk and the supervisor wallboard (issue 12): pure folds and decisions, a service."""
