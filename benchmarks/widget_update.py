"""Time the theta explorer's update: one slider move -> new readout and redrawn figure.

Run ``python benchmarks/widget_update.py``; it sets the theta slider 50 times (n = 200 and
n = 1000 samples) exactly as a browser would, and prints the mean and worst time per update.
The budget is 0.2 s per update on two CPU cores.
"""

import time

import numpy as np

from labkit.widgets import theta_explorer


def main(updates: int = 50) -> None:
    """Print the mean and the maximum seconds per theta update, for n = 200 and n = 1000."""
    thetas = np.linspace(-0.95, 0.95, updates)
    for n in (200, 1000):
        theta_slider = theta_explorer(theta=1.0, n=n).children[0]
        times = []
        for theta in thetas:
            start = time.perf_counter()
            theta_slider.value = float(theta)
            times.append(time.perf_counter() - start)
        print(f"n = {n:4d}: {updates} updates, mean {np.mean(times) * 1e3:.1f} ms, "
              f"max {np.max(times) * 1e3:.1f} ms per update")


if __name__ == "__main__":
    main()
