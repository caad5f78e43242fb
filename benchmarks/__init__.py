"""Benchmarks anyone can run: ``python -m benchmarks.transmitter``, ``benchmarks.receiver``."""
