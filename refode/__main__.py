"""``python -m refode`` is the ``refode`` command."""
import sys

from .cli import main

sys.exit(main())
