"""The pipeline's steps: each a pure core and a thin main() whose container paths are defaults."""
