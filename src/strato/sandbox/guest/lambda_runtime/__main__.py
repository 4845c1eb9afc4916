"""``python -m lambda_runtime``: run the runtime; the exit status is ``main()``'s."""

import sys

from .bootstrap import main

sys.exit(main())
