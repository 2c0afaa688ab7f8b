"""Tests of the training loop: config validation, Algorithm 1's phases, exact resume, ensembles,
divergence handling and the paper-level claims on the 8-Gaussian ring."""

import json
import math

import numpy as np
import pytest
import torch

from labkit import checkpoint
from labkit.cli.runs import final_metrics
from labkit.train import (
    DivergenceError,
    TrainConfig,
    Trainer,
    critic_steps,
    member_seeds,
)

# Small, fast settings shared by the loop tests (not the paper's: those are TrainConfig()).
TINY = dict(hidden=16, depth=2, batch_size=32, eval_every=5, eval_samples=200)


def tiny(**kwargs) -> TrainConfig:
    return TrainConfig(**{**TINY, **kwargs})


def params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def history_without_time(history):
    """The history as JSON text (so NaN compares equal to NaN), wall time left out."""
    cols = history.as_dict()
    cols.pop("time")
    return json.dumps(cols)


# ------------------------------------------------------------------ config
def test_defaults_are_algorithm_1():
    c = TrainConfig()
    assert (c.optimizer, c.lr, c.clip, c.batch_size, c.n_critic) == ("rmsprop", 5e-5, 0.01, 64, 5)
    assert (c.loss, c.constraint, c.clip_timing) == ("wgan", "clip", "after")


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("lr", 0.0, "lr must be .*> 0, got 0.0"),
        ("clip", -0.01, "clip must be .*> 0, got -0.01"),
        ("n_critic", 0, "n_critic must be an integer >= 1, got 0"),
        ("batch_size", 2.5, "batch_size must be an integer >= 1, got 2.5"),
        ("betas", (0.5, 1.0), r"betas must be two numbers in \[0, 1\), got \(0.5, 1.0\)"),
        ("gp_lambda", -1.0, "gp_lambda must be .*>= 0, got -1.0"),
        ("device", "tpu", "device must be .*, got 'tpu'"),
        ("optimizer", "adagrad", "optimizer must be one of rmsprop, adam, sgd, got 'adagrad'"),
        ("loss", "hinge", "loss must be one of wgan.*, got 'hinge'"),
        ("constraint", "l2", "constraint must be one of clip, gp, sn, none, got 'l2'"),
        ("clip_timing", "during", "clip_timing must be one of after, before, got 'during'"),
        ("target", "moons", "target must be one of ring.*, got 'moons'"),
    ],
)
def test_bad_config_names_field_and_allowed(field, value, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**{field: value})


def test_unknown_field_lists_known():
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['learning_rate'\].*'lr'"):
        TrainConfig.from_dict({"learning_rate": 1e-4})


def test_config_round_trips_through_dict():
    c = tiny(betas=(0.0, 0.9), n_seeds=3)
    assert TrainConfig.from_dict(c.to_dict()) == c


def test_warmup_schedule_matches_authors_code():
    # main.py: Diters = 100 if gen_iterations < 25 or gen_iterations % 500 == 0 else 5
    on = TrainConfig(critic_warmup=True)
    expected = [100 if (t < 25 or t % 500 == 0) else 5 for t in range(1200)]
    assert [critic_steps(on, t) for t in range(1200)] == expected
    assert {critic_steps(TrainConfig(), t) for t in range(1200)} == {5}


def test_member_seed_streams_differ():
    a, b, c = member_seeds(0)
    assert len({a, b, c}) == 3 and member_seeds(0) == (a, b, c) and member_seeds(1)[0] != a


# ------------------------------------------------------------------ Algorithm 1
def test_critic_phase_takes_n_critic_optimizer_steps():
    t = Trainer(tiny(n_critic=3), progress=False)
    t.step.reference.critic_phase(3)
    state = t.opt_critic.state_dict()["state"]
    assert all(int(s["step"]) == 3 for s in state.values())
    t.step.reference.generator_phase()
    assert all(int(s["step"]) == 1 for s in t.opt_generator.state_dict()["state"].values())


def test_generator_phase_leaves_critic_untouched():
    t = Trainer(tiny(), progress=False)
    before = params(t.critic)
    t.step.reference.generator_phase()
    assert all(torch.equal(before[k], v) for k, v in params(t.critic).items())
    assert all(p.grad is None for p in t.critic.parameters())


@pytest.mark.parametrize("timing", ["after", "before"])
def test_clipping_keeps_critic_in_box(timing):
    c = 0.01
    t = Trainer(tiny(clip=c, clip_timing=timing, lr=1e-2, iters=5), progress=False)
    t.run()
    biggest = max(p.abs().max().item() for p in t.critic.parameters())
    if timing == "after":  # Algorithm 1: clip after every critic update
        assert biggest <= c
    else:  # authors' code: the last critic step's update is still unclipped
        assert c < biggest <= c + 2 * 1e-2 * 10  # one RMSprop step moves at most ~lr/sqrt(1-alpha)


def test_wgan_estimate_sign_is_positive_when_far():
    # A generator far from the ring: the trained critic's estimate of W must be clearly positive.
    t = Trainer(tiny(iters=20, lr=1e-3, eval_every=20), progress=False)
    with torch.no_grad():
        t.generator.main[-1].bias.add_(10.0)  # shift every fake point by (10, 10)
    t.run()
    assert t.history.rows[-1]["w_estimate"] > 0
    assert t.last_eval[0]["w_estimate_eval"] > 0
    assert t.last_eval[0]["w1_exact"] > 10  # ring radius 2 around the origin, fakes near (10, 10)


# ------------------------------------------------------------------ resume, ensembles
@pytest.mark.parametrize(
    "cfg",
    [
        dict(),
        dict(optimizer="adam", constraint="gp", lr=1e-3, clip_timing="before"),
        dict(loss="gan-logd", constraint="none", optimizer="sgd", n_critic=1, lr=1e-2),
    ],
)
def test_resume_is_bit_exact(tmp_path, cfg):
    n = 7
    one_go = Trainer(tiny(iters=2 * n, **cfg), progress=False)
    one_go.run()

    path = tmp_path / "ckpt.pt"
    first = Trainer(tiny(iters=n, checkpoint=str(path), **cfg), progress=False)
    first.run()
    resumed = Trainer.resume(path, tiny(iters=2 * n, checkpoint=str(path), **cfg), progress=False)
    resumed.run()

    for a, b in [(one_go.generator, resumed.generator), (one_go.critic, resumed.critic)]:
        pa, pb = params(a), params(b)
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert history_without_time(one_go.history) == history_without_time(resumed.history)
    assert json.dumps(final_metrics(one_go)) == json.dumps(final_metrics(resumed))


@pytest.mark.parametrize("n_seeds", [1, 3])
def test_evaluation_schedule_never_changes_training(n_seeds):
    """Evaluating often or rarely trains the same models: evaluation must not advance spectral
    norm's power iteration (it did, through the critic's training-mode forward pass)."""
    runs = []
    for eval_every in (1, 1000):
        trainer = Trainer(tiny(iters=6, constraint="sn", optimizer="adam", lr=1e-3,
                               n_seeds=n_seeds, eval_every=eval_every, eval_samples=50),
                          progress=False)
        trainer.run()
        runs.append(trainer)
    for a, b in [(runs[0].generator, runs[1].generator), (runs[0].critic, runs[1].critic)]:
        pa, pb = params(a), params(b)
        assert pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)
    assert len(runs[0].history.evals) == 7 * n_seeds  # it did evaluate at every iteration


def test_resume_refuses_different_config(tmp_path):
    path = tmp_path / "ckpt.pt"
    Trainer(tiny(iters=2, checkpoint=str(path)), progress=False).run()
    with pytest.raises(ValueError, match=r"different config: clip: 0.01 -> 0.05; lr: 5e-05 -> "):
        Trainer.resume(path, tiny(iters=4, clip=0.05, lr=1e-4, checkpoint=str(path)))


def test_checkpoint_holds_everything(tmp_path):
    path = tmp_path / "ckpt.pt"
    Trainer(tiny(iters=3, checkpoint=str(path)), progress=False).run()
    state = checkpoint.load(path)
    assert state["iteration"] == 3 and state["config"]["iters"] == 3
    assert set(state["rng"]) == {"members", "torch", "numpy", "python"}
    assert {"generator", "critic", "opt_generator", "opt_critic", "history"} <= set(state)
    assert len(state["history"]["rows"]) == 3


def test_ensemble_members_match_single_runs():
    # Member s of an ensemble of seeds 3, 4, 5 follows the single run with seed 3 + s.
    cfg = dict(iters=6, lr=1e-3, eval_every=6)
    ens = Trainer(tiny(seed=3, n_seeds=3, **cfg), progress=False)
    ens.run()
    for s in range(3):
        single = Trainer(tiny(seed=3 + s, **cfg), progress=False)
        single.run()
        member = ens.generator.member(s)
        for (name, a), b in zip(
            single.generator.state_dict().items(), member.state_dict().values(), strict=True
        ):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)
        rows_e = [r for r in ens.history.rows if r["seed"] == 3 + s]
        for ra, rb in zip(single.history.rows, rows_e, strict=True):
            assert ra["w_estimate"] == pytest.approx(rb["w_estimate"], rel=1e-4, abs=1e-7)
        assert single.last_eval[0]["w1_exact"] == pytest.approx(
            ens.last_eval[s]["w1_exact"], rel=1e-4
        )


# ------------------------------------------------------------------ failures
def test_divergence_names_iteration_and_keeps_last_good_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"

    def poison(event):  # a NaN enters the generator right after iteration 5's evaluation
        if event.name == "eval" and event.iteration == 5:
            with torch.no_grad():
                next(event.trainer.generator.parameters()).fill_(math.nan)

    t = Trainer(
        tiny(iters=20, checkpoint=str(path), checkpoint_every=4, eval_every=5),
        callbacks=[poison],
        progress=False,
    )
    with pytest.raises(DivergenceError, match="diverged at iteration 6"):
        t.run()
    state = checkpoint.load(path)
    assert state["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in state["generator"].values())


def test_large_learning_rate_diverges_cleanly():
    # No constraint, plain SGD with a huge step: the WGAN critic's weights blow up to inf/NaN.
    t = Trainer(tiny(constraint="none", optimizer="sgd", lr=1e12, iters=200), progress=False)
    with pytest.raises(DivergenceError, match=r"diverged at iteration \d+"):
        t.run()


def test_ctrl_c_during_an_evaluation_saves_the_iteration_reached(tmp_path):
    import os
    import signal

    def ctrl_c(event):  # a real SIGINT while iteration 10 is being evaluated
        if event.name == "eval" and event.iteration == 10:
            os.kill(os.getpid(), signal.SIGINT)

    path = tmp_path / "c.pt"
    t = Trainer(tiny(iters=40, checkpoint=str(path), checkpoint_every=8, eval_every=5),
                callbacks=[ctrl_c], progress=False)
    t.run()
    assert t.interrupted and t.iteration == 10
    assert checkpoint.load(path)["iteration"] == 10  # not 8, the last periodic checkpoint


class _Counter:
    """A callback with a state, which checkpoints keep."""

    def __init__(self):
        self.evals = 0

    def __call__(self, event):
        self.evals += event.name == "eval"

    def state_dict(self):
        return {"evals": self.evals}

    def load_state_dict(self, state):
        self.evals = state["evals"]


def test_callback_state_survives_a_resume(tmp_path):
    path = tmp_path / "c.pt"
    first = _Counter()
    Trainer(tiny(iters=10, checkpoint=str(path), eval_every=5), callbacks=[first],
            progress=False).run()
    assert first.evals == 3 and checkpoint.load(path)["callbacks"] == [{"evals": 3}]
    second = _Counter()
    t = Trainer.resume(path, tiny(iters=20, checkpoint=str(path), eval_every=5),
                       callbacks=[lambda event: None, second], progress=False)
    assert second.evals == 3  # restored, then counts on
    t.run()
    assert second.evals == 5
    with pytest.raises(ValueError, match=r"state of 1 callback\(s\), this trainer has 2"):
        Trainer.resume(path, tiny(iters=30, checkpoint=str(path), eval_every=5),
                       callbacks=[_Counter(), _Counter()], progress=False)


def test_callbacks_see_every_event_with_what_it_carries(tmp_path):
    events = []
    t = Trainer(tiny(iters=10, checkpoint=str(tmp_path / "c.pt"), checkpoint_every=5),
                callbacks=[events.append], progress=False)
    t.run()
    assert [(e.name, e.iteration) for e in events if e.name not in ("step", "record")] == [
        ("evaluating", 0), ("eval", 0),
        ("evaluating", 5), ("eval", 5), ("checkpoint", 5),
        ("evaluating", 10), ("eval", 10), ("checkpoint", 10),
        ("end", 10),
    ]
    assert [e.iteration for e in events if e.name == "step"] == list(range(1, 11))
    # step values reach the history before each evaluation and save: iterations 5 and 10
    assert [e.iteration for e in events if e.name == "record"] == [5, 10]
    assert all(e.trainer is t for e in events)
    evals = [e for e in events if e.name == "eval"]
    for event in evals:  # an eval event carries the rows the history got at that iteration
        row = {k: v for k, v in t.history.evals[evals.index(event)].items()
               if k not in ("iteration", "seed")}
        assert event.evals == [row] and event.grid is None  # toys have no sample grid
    assert [e.what for e in events if e.name == "evaluating"] == [t.evaluator.busy] * 3
    assert [e.path for e in events if e.name == "checkpoint"] == [tmp_path / "c.pt"] * 2


def test_callbacks_set_after_construction_are_told_and_a_failed_run_lets_go_of_its_bar(tmp_path):
    t = Trainer(tiny(iters=4, checkpoint=str(tmp_path / "c.pt"), eval_every=2), progress=False)
    names = []
    t.callbacks = (lambda event: names.append(event.name),)  # replaced, and not a list
    t.run()
    assert names.count("eval") == 3 and names[-1] == "end"

    def poison(event):
        if event.name == "eval" and event.iteration == 2:
            with torch.no_grad():
                next(event.trainer.generator.parameters()).fill_(math.nan)

    bad = Trainer(tiny(iters=6, eval_every=2), callbacks=[poison], progress=False)
    with pytest.raises(DivergenceError):
        bad.run()
    told = []
    bad.callbacks = [told.append]
    bad._emit("checkpoint")  # after the failed run only the callbacks hear, not its closed bar
    assert [e.name for e in told] == ["checkpoint"] and bad._bar is None


def test_history_columns_and_eval_rows():
    t = Trainer(tiny(iters=10), progress=False)
    t.run()
    cols = t.history.as_dict()
    assert cols["iteration"] == list(range(11))
    assert [
        i for i, w in zip(cols["iteration"], cols["w1_exact"], strict=True) if w is not None
    ] == [0, 5, 10]
    assert all(0 <= m <= 8 for m in cols["modes"] if m is not None)
    # final metrics reuse iteration 10's evaluation; it must equal a fresh one
    (final,) = final_metrics(t)
    fresh = t.evaluate()[0]
    assert json.dumps({k: final[k] for k in fresh}) == json.dumps(fresh)


def test_progress_bar_shows_the_running_w_estimate_between_evaluations(capsys):
    """With no evaluation after iteration 0 (iters < eval_every), the bar still ends with the
    median of the first seed's step estimates over the last 100 iterations (it read nan)."""
    config = TrainConfig(iters=130, eval_every=1000, eval_samples=50, hidden=8, n_seeds=2,
                         constraint="gp", optimizer="adam", lr=1e-3)  # estimates of order 1
    history = Trainer(config).run().as_dict()
    last_line = capsys.readouterr().err.strip().split("\r")[-1]
    first_seed = [w for it, s, w in zip(history["iteration"], history["seed"],
                                        history["w_estimate"], strict=True)
                  if s == config.seed and it > 30]
    assert len(first_seed) == 100
    assert f"W_est={np.median(first_seed):.4g}" in last_line, last_line
    assert "nan" not in last_line and abs(np.median(first_seed)) > 1e-3
