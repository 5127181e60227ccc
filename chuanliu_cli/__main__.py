"""`python -m chuanliu_cli` runs the command-line tool."""

from chuanliu_cli.cli.app import main

main()
