"""Index the Milvus docs into Milvus (the library code is `cli.ingest`). Run with --help for the options."""

import sys

from cli.ingest import entry

if __name__ == "__main__":
    sys.exit(entry())
