"""Searching the index: the retriever the chain uses."""
