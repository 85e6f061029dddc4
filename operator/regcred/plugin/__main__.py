"""`python -m regcred.plugin`: the same as `kubectl regcred`."""

import sys

from regcred.plugin import main

sys.exit(main())
