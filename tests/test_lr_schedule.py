"""LR schedules and their areas: exact S1/S2 against hand-computed schedules, specs, errors, probe parity."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayes_dcpt.laws.lr_schedules import (
    Schedule,
    ScheduleError,
    annealing_area,
    forward_area,
    parse_schedule,
    phase_areas,
)


# ------------------------------------------------------------------------------------------- shapes
def test_named_shapes_by_hand():
    # cosine over 4 steps from 1 to 0: 0.5 (1 + cos(pi s / 4)), s = 0..3
    cos = Schedule("cosine", steps=4, peak=1.0, final=0.0).lrs()
    assert np.allclose(cos, [1.0, 0.5 + 0.5 * np.sqrt(0.5), 0.5, 0.5 - 0.5 * np.sqrt(0.5)], rtol=0, atol=1e-15)
    # WSD: 2 decay steps (40% of 5), linear to 0
    assert Schedule("wsd", steps=5, peak=1.0, final=0.0, decay_frac=0.4).lrs().tolist() == [1, 1, 1, 0.5, 0]
    # constant with a 2-step linear warmup: peak * i / warmup for i = 1, 2
    assert Schedule("constant", steps=3, peak=2.0, warmup=2).lrs().tolist() == [1.0, 2.0, 2.0]
    # linear: warmup 1, then a straight line reaching final at the last step
    assert np.allclose(Schedule("linear", steps=4, peak=1.0, warmup=1, final=0.0).lrs(), [1, 2 / 3, 1 / 3, 0])
    # WSD decay shapes end at final and start below peak
    for shape in ("linear", "cosine", "sqrt"):
        v = Schedule("wsd", steps=100, peak=1.0, final=0.1, decay=shape).lrs()
        assert v[79] == 1.0 and v[-1] == pytest.approx(0.1) and 0.1 < v[85] < 1.0
    assert Schedule("cosine", steps=10, peak=1.0).final == pytest.approx(0.1)  # default final = 0.1 peak


def test_areas_by_hand():
    # PT [2, 4, 4, 1] then CPT [3, 3, 1], lambda = 0.5, eta_0 = the PT peak 4.
    # changes: PT (2, -2, 0, 3), CPT (1 - 3 = -2, 0, 2)
    # PT momentum: 2, -1, -0.5, 2.75 | 1.375, 0.6875, 0.34375 -> S2pt 3.25 | 4.625, 5.3125, 5.65625
    # CPT momentum: -2, -1, 1.5 -> S2cpt 0, -2, -3, -1.5
    a = phase_areas([3, 3, 1], [2, 4, 4, 1], momentum=0.5)
    assert a.S1pt == 11.0
    assert a.S1cpt.tolist() == [0.0, 3.0, 6.0, 7.0]
    assert a.S2pt.tolist() == [3.25, 4.625, 5.3125, 5.65625]
    assert a.S2cpt.tolist() == [0.0, -2.0, -3.0, -1.5]
    got = a.at([0, 3])
    assert got["S2cpt"].tolist() == [0.0, -1.5] and got["S1pt"].tolist() == [11.0, 11.0]
    # one sequence: [1, .5, .5, .25], lambda .5 -> changes 0, .5, 0, .25 -> m 0, .5, .25, .375
    assert annealing_area([1, 0.5, 0.5, 0.25], 0.5).tolist() == [0.0, 0.0, 0.5, 0.75, 1.125]
    assert forward_area([1, 0.5, 0.5]).tolist() == [0.0, 1.0, 1.5, 2.0]
    # lambda = 1: S2(t) = sum_i (eta_0 - eta_i); lambda = 0: S2(t) = eta_0 - eta_t
    eta = [1.0, 0.8, 0.6, 0.9]
    assert np.allclose(annealing_area(eta, 1.0), [0, 0, 0.2, 0.6, 0.7])
    assert np.allclose(annealing_area(eta, 0.0), [0, 0, 0.2, 0.4, 0.1])


def _double_sum(eta: np.ndarray, eta0: float, lam: float) -> np.ndarray:
    """The definition S2(t) = sum_{i<=t} sum_{k<=i} (eta_{k-1} - eta_k) lam^(i-k), literally."""
    prev = np.concatenate([[eta0], eta[:-1]])
    d = prev - eta
    return np.array([sum(d[k] * lam ** (i - k) for i in range(t) for k in range(i + 1)) for t in range(len(eta) + 1)])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=25), st.lists(st.floats(0.0, 1.0), min_size=1,
       max_size=25), st.floats(0.0, 1.0))
def test_recursion_equals_the_double_sum_and_phases_add_up(pt, cpt, lam):
    pt, cpt = np.asarray(pt), np.asarray(cpt)
    a = phase_areas(cpt, pt, momentum=lam)
    whole = _double_sum(np.concatenate([pt, cpt]), pt.max(), lam)
    assert np.allclose(a.S2pt + a.S2cpt, whole[len(pt):], atol=1e-10)
    # the PT part alone is the double sum over the PT changes only (carried on through the CPT steps)
    d_pt = np.concatenate([pt, np.full(len(cpt), pt[-1])])  # no LR change after the PT
    assert np.allclose(a.S2pt, _double_sum(d_pt, pt.max(), lam)[len(pt):], atol=1e-10)
    assert a.S1pt == pytest.approx(pt.sum()) and np.allclose(a.S1cpt, np.concatenate([[0], np.cumsum(cpt)]))


def test_rewarmup_is_negative_and_annealing_positive():
    pt = Schedule("cosine", steps=512, peak=3e-3, warmup=50, final=3e-4)
    rewarm = phase_areas(Schedule("constant", steps=256, peak=1e-3, warmup=10), pt)
    flat = phase_areas(Schedule("constant", steps=256, peak=3e-4), pt)
    wsd = phase_areas(Schedule("wsd", steps=256, peak=1e-3, warmup=10, final=1e-4), pt)
    assert (rewarm.S2cpt[20:] < 0).all()                 # re-warmup: negative annealing area (loss bump)
    assert np.abs(flat.S2cpt).max() < 1e-5               # continuing at the PT's final LR: (almost) no annealing
    assert wsd.S2cpt[-1] > rewarm.S2cpt[-1]              # the WSD decay adds annealing area
    assert np.array_equal(wsd.S2cpt[:200], rewarm.S2cpt[:200])  # identical until the decay starts
    assert np.array_equal(rewarm.S2pt, flat.S2pt)        # the PT part does not depend on the CPT schedule
    # the momentum starts at rest at the PT peak: with lambda = 1, S2 is the area below the peak
    only_pt = phase_areas(None, pt, momentum=1.0)
    assert only_pt.S2pt[0] == pytest.approx(sum(3e-3 - v for v in pt.lrs()), rel=1e-12)
    # so the warmup leaves almost no momentum behind (counted from the first LR instead, it would drive S2
    # down for thousands of steps: a phantom loss rise during CPT)
    warm = Schedule("constant", steps=512, peak=3e-3, warmup=50)
    drift = np.ptp(phase_areas(Schedule("constant", steps=100, peak=3e-3), warm).S2pt)
    naive = annealing_area(np.concatenate([warm.lrs(), np.full(100, 3e-3)]), eta0=warm.lrs()[0])
    assert drift < 0.005 and np.ptp(naive[512:]) > 30 * drift


# ---------------------------------------------------------------------------------------- specs
@pytest.mark.parametrize("spec", [
    "cosine(peak=1e-3, steps=256, warmup=10, final=1e-4)",
    "wsd(peak=0.001, steps=300, final=0, decay_frac=0.1, decay=sqrt)",
    "constant(peak=5e-4, steps=100)",
    "linear(peak=2e-3, steps=50, warmup=5, final=0)",
    '{"kind": "cosine", "peak": 0.001, "steps": 64, "min_ratio": 0.1}',
    "[0.1, 0.2, 0.3]",
])
def test_spec_round_trip(spec):
    s = parse_schedule(spec)
    again = parse_schedule(s.spec())
    assert again == s and np.array_equal(again.lrs(), s.lrs())
    assert parse_schedule(s.to_dict()) == s
    assert parse_schedule(json.dumps(s.to_dict())) == s


def test_aliases_file_and_explicit(tmp_path):
    a = parse_schedule("cosine(lr=1e-3, total_steps=10, warmup_steps=2, min_lr_ratio=0.5)")
    assert a == Schedule("cosine", steps=10, peak=1e-3, warmup=2, final=5e-4)
    np.save(tmp_path / "lrs.npy", a.lrs())
    (tmp_path / "lrs.csv").write_text("step,lr\n" + "\n".join(f"{i},{float(v)!r}" for i, v in enumerate(a.lrs())))
    for name in ("lrs.npy", "lrs.csv"):
        e = parse_schedule(f"file:{name}", base_dir=tmp_path)
        assert e.kind == "explicit" and np.array_equal(e.lrs(), a.lrs()) and e.steps == 10
    assert parse_schedule(a.lrs()).key().startswith("explicit(steps=10, sha=")
    assert a.truncated(4).lrs().tolist() == a.lrs()[:4].tolist()


@pytest.mark.parametrize("spec, needle", [
    ("cosine", "needs its parameters"),
    ("cosine(peak=1e-3)", "needs peak and steps"),
    ("exp(peak=1, steps=3)", "unknown schedule kind"),
    ("cosine(peak=1e-3, steps=10, final=1)", "final must be in"),
    ("cosine(peak=-1, steps=10)", "peak must be > 0"),
    ("cosine(peak=1e-3, steps=2.5)", "steps must be a whole number"),
    ("constant(peak=1e-3, steps=10, warmup=11)", "must not exceed steps"),
    ("constant(peak=1e-3, steps=10, final=1e-4)", "constant schedule has final = peak"),
    ("wsd(peak=1e-3, steps=10, decay_frac=0)", "decay_frac must be in"),
    ("wsd(peak=1e-3, steps=10, decay=exp)", "decay must be one of"),
    ("cosine(peak=1e-3, steps=10, colour=red)", "unknown parameter"),
    ("cosine(peak=abc, steps=10)", "peak must be a number"),
    ("cosine(peak=1e-3, steps=10, final=1e-4, min_ratio=0.1)", "not both"),
    ("[0.1, -0.2]", r"finite and >= 0 \(step 2\)"),
    ("[]", "non-empty"),
    ("{bad json", "not valid JSON"),
    ("file:/no/such/file.npy", "schedule file not found"),
    ("cosine peak=1", "cannot read schedule spec"),
])
def test_bad_specs_name_the_problem(spec, needle):
    with pytest.raises(ScheduleError, match=needle):
        parse_schedule(spec)


def test_momentum_and_steps_are_checked():
    with pytest.raises(ScheduleError, match="lambda must be in"):
        phase_areas([1.0], [1.0], momentum=1.5)
    a = phase_areas([1.0, 1.0], [1.0])
    with pytest.raises(ScheduleError, match="CPT steps must be whole numbers in 0..2"):
        a.at([3])
    with pytest.raises(ScheduleError, match="outside"):
        Schedule("constant", steps=3, peak=1.0).lr_at(3)


def test_probe_trains_with_exactly_these_lrs():
    pytest.importorskip("torch")
    from bayes_dcpt.probe.timeline import lr_at, train_schedule

    for kind in ("constant", "cosine", "linear", "wsd"):
        s = train_schedule(37, 1e-3, kind, warmup=5, min_ratio=0.1, decay_frac=0.2)
        assert [lr_at(i, 37, 1e-3, kind, 5, 0.1, 0.2) for i in range(37)] == s.lrs().tolist()
