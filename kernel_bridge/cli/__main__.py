"""``python -m kernel_bridge.cli``: the same as the ``kernel-bridge`` console script."""

from kernel_bridge.cli import main

raise SystemExit(main())
