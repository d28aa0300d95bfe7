"""``python -m kernel_bridge -f CONNECTION_FILE``: start a bridge kernel (Jupyter runs this)."""

import sys

if __name__ == "__main__":
    from kernel_bridge._early_listen import listen

    # The frontend's connections wait for the kernel in the ports' backlog from now on,
    # instead of being refused and retried after ZMQ's reconnect interval.
    listen(sys.argv[1:])

    from kernel_bridge.executors.local._early_runtime import start_early

    # Before the kernel application's imports, so the runtime's start-up overlaps them.
    start_early(sys.argv[1:])

    from kernel_bridge.kernelapp import main

    main()
