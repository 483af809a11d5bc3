"""Print a trace written by `ask.py --trace FILE` as a tree (code: `cli.trace_view`). --help for the options."""

import sys

from cli.trace_view import entry

if __name__ == "__main__":
    sys.exit(entry())
