"""Retrieval quality harness and the seed baseline: tools beside the runtime, never imported by it."""
