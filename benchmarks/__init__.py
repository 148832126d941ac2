"""facesearch benchmarks: each module is run as ``python -m benchmarks.NAME``,
prints a table and writes ``benchmarks/results/NAME.json``."""
