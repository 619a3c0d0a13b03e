"""`python -m bot …` (SPEC §7): the command line lives in cli.py."""
import sys

from cli import main

sys.exit(main())
