"""Settings and the error family: the bottom layer, importable from every other."""
