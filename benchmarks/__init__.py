"""Benchmarks that back the README's measured numbers; see benchmarks/README.md."""
