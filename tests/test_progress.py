"""Progress reporting of long fits (:mod:`bayes_dcpt.fitting.progress`) and the CLI spinner that shows it."""

from __future__ import annotations

import sys
from types import SimpleNamespace

from bayes_dcpt.fitting import progress as P


def _chain(done: int, total: int, div: int, tuning: bool) -> SimpleNamespace:
    return SimpleNamespace(finished_draws=done, total_draws=total, divergences=div, tuning=tuning)


def test_chain_summary_sums_the_chains():
    assert P.chain_summary([_chain(300, 2000, 0, True), _chain(700, 2000, 1, False)]) == \
        "warm-up 1,000/4,000 (25%), 1 divergence"
    assert P.chain_summary([_chain(2000, 2000, 2, False)] * 2) == \
        "draws 4,000/4,000 (100%), 4 divergences"


def test_nothing_is_reported_or_passed_to_nutpie_without_a_reporter():
    assert P.nutpie_callback() is None
    with P.stage("L3: held-out refit, tokens split"):
        assert P.nutpie_callback() is None


def test_stages_nest_and_prefix_the_chains_progress():
    lines: list[str] = []
    with P.reporting(lines.append):
        with P.stage("L3: fit to all the data (1 of 2, weight 0.83)"):
            cb = P.nutpie_callback()
            cb([_chain(10, 100, 0, True)])
        with P.stage("scoring the stacked refits"):
            pass
        P.nutpie_callback()([_chain(1, 2, 0, False)])
    assert lines == ["L3: fit to all the data (1 of 2, weight 0.83)",
                     "L3: fit to all the data (1 of 2, weight 0.83): warm-up 10/100 (10%), 0 divergences",
                     "scoring the stacked refits",
                     "draws 1/2 (50%), 0 divergences"]
    assert P.nutpie_callback() is None  # the reporter ends with its block


def test_cli_spinner_reports_only_on_a_terminal(monkeypatch):
    from bayes_dcpt.cli.fit_cmd import _spinner

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with _spinner("sampling cpt", "cpt"):
        assert P.nutpie_callback() is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with _spinner("sampling cpt", "cpt"):
        cb = P.nutpie_callback()
        assert cb is not None
        cb([_chain(5, 10, 0, True)])  # updates the spinner's line from nutpie's thread: must not raise
    assert P.nutpie_callback() is None


def test_every_thins_the_chains_lines_but_keeps_the_last(monkeypatch):
    clock = iter([0.0, 1.0, 2.0, 31.0, 32.0])
    monkeypatch.setattr(P.time, "monotonic", lambda: next(clock))
    lines: list[str] = []
    with P.reporting(lines.append, every=30):
        cb = P.nutpie_callback()
        for done in (1, 2, 3, 4):
            cb([_chain(done, 10, 0, True)])
        cb([_chain(10, 10, 0, False)])
    assert [x.split(",")[0] for x in lines] == ["warm-up 1/10 (10%)", "warm-up 4/10 (40%)", "draws 10/10 (100%)"]
