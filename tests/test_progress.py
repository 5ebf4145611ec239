"""Progress reporting of long fits (:mod:`bayes_dcpt.fitting.progress`) and the CLI spinner that shows it."""

from __future__ import annotations

import sys
import threading
from types import SimpleNamespace

import pytest
from rich.progress import Progress

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
            P.nutpie_callback()([_chain(10, 100, 0, True)])
            with P.stage("inner"):
                P.nutpie_callback()([_chain(3, 4, 0, False)])
            P.nutpie_callback()([_chain(20, 100, 0, True)])  # the outer stage is back
        with P.stage("scoring the stacked refits"):
            pass
        P.nutpie_callback()([_chain(1, 2, 0, False)])
    assert lines == ["L3: fit to all the data (1 of 2, weight 0.83)",
                     "L3: fit to all the data (1 of 2, weight 0.83): warm-up 10/100 (10%), 0 divergences",
                     "inner",
                     "inner: draws 3/4 (75%), 0 divergences",
                     "L3: fit to all the data (1 of 2, weight 0.83): warm-up 20/100 (20%), 0 divergences",
                     "scoring the stacked refits",
                     "draws 1/2 (50%), 0 divergences"]
    assert P.nutpie_callback() is None  # the reporter ends with its block


def test_a_failing_reporter_warns_and_the_fit_goes_on():
    def broken(line: str) -> None:
        raise OSError("closed pipe")

    ran = []
    with P.reporting(broken):
        with pytest.warns(RuntimeWarning, match="progress reporter failed .*closed pipe"):
            with P.stage("L3: held-out refit, tokens split"):
                ran.append(True)
        with pytest.warns(RuntimeWarning, match="closed pipe"):
            P.nutpie_callback()([_chain(1, 2, 0, True)])
    assert ran == [True]
    with P.reporting(broken), pytest.raises(KeyError), pytest.warns(RuntimeWarning):
        with P.stage("x"):
            raise KeyError("the fit's own error")
    assert P.nutpie_callback() is None  # nothing left installed after an error


def test_cli_spinner_reports_only_on_a_terminal(monkeypatch):
    from bayes_dcpt.cli.fit_cmd import _spinner

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with _spinner("sampling cpt", "cpt"):
        assert P.nutpie_callback() is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    shown: list[str] = []
    update = Progress.update

    def record(self, task_id, **kw):
        shown.append(kw.get("description", ""))
        update(self, task_id, **kw)

    monkeypatch.setattr(Progress, "update", record)
    with _spinner("sampling cpt", "cpt"):
        cb = P.nutpie_callback()
        assert cb is not None
        with P.stage("cpt: held-out refit, tokens split"):
            pass
        t = threading.Thread(target=cb, args=([_chain(5, 10, 0, True)],))  # nutpie calls it from its thread
        t.start()
        t.join()
    assert shown == ["cpt: held-out refit, tokens split", "cpt: warm-up 5/10 (50%), 0 divergences"]
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
