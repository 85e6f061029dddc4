"""Benchmarks of regcred-operator against a floor measured in the same run: `python -m bench`."""
