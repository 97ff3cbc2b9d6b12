"""`python -m untwine` runs the command line."""

from untwine.cli import main

main()
