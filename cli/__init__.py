"""The commands: argument parsing, one-line errors, exit codes; the work is in the layers below."""
