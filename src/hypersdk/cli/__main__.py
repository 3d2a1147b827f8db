"""``python -m hypersdk.cli``: the same as the ``hypersdk`` command."""

import sys

from hypersdk.cli import main

sys.exit(main())
