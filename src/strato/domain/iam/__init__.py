"""IAM's vocabulary as strato keeps it: roles, their inline policies, role sessions, and the
errors of the IAM and STS APIs."""
