"""``python -m tvault_git.hooks HOOK``: what the installed git hooks run."""

import sys

from tvault_git.hooks import main

sys.exit(main())
