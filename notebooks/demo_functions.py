"""Demo user-defined functions: injected at session start by the demo and test kernelspecs."""

import math


def circle_area(radius: float) -> float:
    """Return the area of a circle of the given radius."""
    return round(math.pi * radius * radius, 6)


def shout(text: str) -> str:
    """Return text in capitals with an exclamation mark."""
    return text.upper() + "!"
