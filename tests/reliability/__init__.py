"""Reliability and security suite (issue 19): bad input, fuzzing, crash safety, load, faults,
security. Quick enough for CI; figures in docs/reliability.md."""
