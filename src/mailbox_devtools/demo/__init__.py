"""Sample data for demos, tests and benchmarks."""
