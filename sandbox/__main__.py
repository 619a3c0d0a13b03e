"""`python -m sandbox`: the emulators until Ctrl-C (sandbox/emulators.py)."""
import sys

from sandbox.emulators import main

sys.exit(main())
