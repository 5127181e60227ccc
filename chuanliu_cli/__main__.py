"""`python -m chuanliu_cli` runs the command-line tool."""

from chuanliu_cli.cli import main

main()
