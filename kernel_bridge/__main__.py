"""``python -m kernel_bridge -f CONNECTION_FILE``: start a bridge kernel (Jupyter runs this)."""

from kernel_bridge.kernelapp import main

if __name__ == "__main__":
    main()
