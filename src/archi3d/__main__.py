"""`python -m archi3d`: the archi3d command line."""

from archi3d.cli import main

main()
