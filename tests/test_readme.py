"""The README's Python example runs as printed, and its callback sees what the history records."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_callback_example_runs_and_agrees_with_the_history(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (example,) = [b for b in blocks if "def keep_w1(event)" in b]
    names: dict = {}
    exec(compile(example, str(README), "exec"), names)
    assert capsys.readouterr().out == "True\n"  # what the example prints
    exact, history = names["exact"], names["history"]
    assert [it for it, _ in exact] == [0, 50, 100, 150, 200]  # eval_every=50 over 200 iterations
    assert [w for _, w in exact] == history.series("w1_exact")[1]
    assert all(0 < w < 10 for _, w in exact)  # exact W1 between the ring and the generator
