"""Time the clipping explorer's update: one control change -> trained critic, readout, figure.

Run ``python benchmarks/clip_explorer.py``; it builds ``labkit.widgets.clip_explorer()`` at its
default sizes (256 points per distribution, critic width 64, n_critic x 40 full-batch steps) and
sets the c slider to every value of its log scale (10^-3 to 1 in steps of 10^0.25: 13 values) as a
browser would, first with an empty cache (every update trains a critic), then again (every update
comes from the cache). It also switches the constraint to "gp" and "sn", and sets n_critic to its
maximum, 10. It prints the mean and the worst time per update. The budget is 1 s per update on
two CPU cores.
"""

import time

import numpy as np

from labkit.widgets import clip_explorer


def _timed(control, values) -> list[float]:
    times = []
    for value in values:
        start = time.perf_counter()
        control.value = value
        times.append(time.perf_counter() - start)
    return times


def _line(label: str, times: list[float]) -> str:
    return (f"{label:<38} {len(times):>2} updates, mean {np.mean(times) * 1e3:6.0f} ms, "
            f"max {np.max(times) * 1e3:6.0f} ms")


def main() -> None:
    """Print the mean and the maximum seconds per update, cold and cached."""
    start = time.perf_counter()
    box = clip_explorer(c=1.0)
    print(f"{'building the explorer (first critic)':<38} {time.perf_counter() - start:.2f} s")
    c_slider, n_slider, _, constraint = box.children[:4]
    exponents = np.arange(-3.0, 0.01, 0.25)[::-1][1:]  # 10^-0.25 ... 10^-3 (1 is built above)
    cs = [float(10**e) for e in exponents]
    print(_line("c slider, cold (trains, n_critic 5)", _timed(c_slider, cs)))
    print(_line("c slider, cached", _timed(c_slider, cs[::-1])))
    print(_line("constraint gp, sn (cold)", _timed(constraint, ["gp", "sn"])))
    print(_line("n_critic 10 (cold, 400 steps, SN)", _timed(n_slider, [10])))
    constraint.value = "clip"
    print(_line("n_critic 10, c slider (cold, clip)", _timed(c_slider, cs[:4])))


if __name__ == "__main__":
    main()
