"""The load-generating process: `python -m bench.load` reads a JSON spec on stdin and prints
its results as one JSON object on stdout.

It runs apart from the process that starts the platform, so its CPU use shows up on its
own line in the per-process figures, and it keeps its work per request small (bodies built
from pre-encoded bytes, one session per purpose, no logging) because it shares the machine
with what it measures.
"""
