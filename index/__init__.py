"""The Milvus collection and how documents get into it."""
