"""Serve the Milvus docs over HTTP (the code is `cli.serve`). Run with --help for the options."""

import sys

from cli.serve import entry

if __name__ == "__main__":
    sys.exit(entry())
