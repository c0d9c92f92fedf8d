"""``python -m mailserver`` runs the CLI."""

import sys

from mailserver.cli import main

sys.exit(main())
