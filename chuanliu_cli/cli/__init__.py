"""The `chuanliu` command line, a thin client of the library."""
