"""Ask the Milvus docs a question (the library code is `cli.ask`). Run with --help for the options."""

import sys

from cli.ask import entry

if __name__ == "__main__":
    sys.exit(entry())
