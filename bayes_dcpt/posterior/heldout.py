"""Measured losses against a fit's predictive bands: how well the predictions hold runs the fit did not see.

A fit is judged by how it extrapolates, and the user who has trained the runs a fit predicted (later checkpoints, a
larger size, another ratio) wants the answer in one place: per (target, domain), the error of the prediction
(MAPE, and its sign: does the law predict too high or too low), the share of measurements inside the ``ci`` band,
which side the misses fall on, and whether that share is in range. ``bayes-dcpt predict`` prints it whenever its
grid carries measured losses, ``--json`` carries it, and :meth:`bayes_dcpt.fitting.base.BaseFit.check_predictions`
returns it in Python.

A 90% band is called calibrated when it holds 80% to 95% of the held-out measurements, the range the honest-fit
benchmarks use (BENCHMARKS.md); at another level ``ci`` the range is ``[ci - 0.10, ci + 0.05]``. Checkpoints of
one run share its offset and miss together, so the evidence is the number of runs, not of rows: a group of fewer
than :data:`MIN_RUNS` runs is shown but not judged, and a group outside the range is a *clear* miss (``FLAG``,
``ok`` False) only when its runs rule the level out (:func:`plausible_coverage`); five runs at 0.70 do not, fifteen
at 0.60 do. Each domain is judged, and every domain together. Rows that are in the fit's own data are scored apart
and never judged: inside the data a band says nothing about extrapolation (the fit's adequacy checks judge those).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bayes_dcpt.data.schema import in_warmup
from bayes_dcpt.encoding import to_jsonable

__all__ = ["BAND_RANGE", "DISPLAY_LEGEND", "MIN_RUNS", "PredictionCheck", "band_range", "check_predictions",
           "judge_coverage", "plausible_coverage"]

#: The calibrated range of a band's coverage around its level ``ci``: ``[ci - 0.10, ci + 0.05]`` (0.80-0.95 at 90%).
BAND_RANGE = (0.10, 0.05)
#: Fewer runs than this in a group: its coverage moves in steps too coarse to judge (shown, not judged).
MIN_RUNS = 3
#: Without run names: the keys that say a measured row is one the fit had (with ``seed`` where both tables have it).
_KEYS = ("domain", "n_params", "tokens", "r_domain")

HELD_OUT, IN_FIT = "held out", "in the fit's data"
#: What the columns of :meth:`PredictionCheck.display` mean, for a table's legend or caption.
DISPLAY_LEGEND = ("bias: the prediction's mean signed error (+: the law predicts too high); inside: the share inside "
                  "the band; plausible: the coverage the runs allow (90%); band: mean width, % of the loss; '*': every "
                  "domain together; rows the fit had are scored apart and not judged (in-sample)")


@dataclass(frozen=True)
class PredictionCheck:
    """Measured losses against the predictions: one row per (target, domain, held out or in the fit's data).

    ``table`` columns: ``target``, ``domain`` (``"*"``: every domain, after the domains when there are several),
    ``where`` (``"held out"`` or ``"in the fit's data"``), ``rows``, ``runs``, ``mape`` (%),
    ``bias`` (mean signed error of the prediction, % of the loss: positive, the law predicts too high),
    ``coverage`` (share inside the ``ci`` band), ``plausible_lo`` / ``plausible_hi`` (the 90% range of the
    coverage the runs allow, :func:`plausible_coverage`), ``below`` / ``above`` (shares under / over the band),
    ``width`` (mean band width, % of the loss), ``verdict`` (``"calibrated"``, ``"too narrow"``, ``"too wide"``,
    ``"too few runs"`` or ``"in the fit's data"``, not judged) and ``clear``: a miss the runs establish (the
    level ``ci`` itself lies outside the plausible range). With baselines (:func:`check_predictions`):
    ``mape_<law>`` per baseline and ``beats_baselines`` (the fit's MAPE no worse than the best of them).
    """

    ci: float
    table: pd.DataFrame
    shares: dict[tuple[str, str], list[float]] = field(default_factory=dict, repr=False)
    #: Measured rows inside their run's LR warm-up, not scored (:func:`check_predictions` ``warmup``).
    warmup_rows: int = 0

    def run_shares(self, target: str, where: str = HELD_OUT) -> list[float]:
        """Each run's share of its measurements inside the band (every domain; what a coverage range pools)."""
        return list(self.shares.get((target, where), []))

    @property
    def judged(self) -> pd.DataFrame:
        """The held-out groups with enough runs to judge: each domain, and every domain together."""
        t = self.table
        return t[(t["where"] == HELD_OUT) & t["verdict"].isin(("calibrated", "too narrow", "too wide"))]

    @property
    def ok(self) -> bool | None:
        """False when a judged group clearly misses (:attr:`problems`), None when nothing could be judged."""
        j = self.judged
        return None if j.empty else not bool(j["clear"].any())

    @property
    def problems(self) -> list[str]:
        """One sentence per group whose runs establish that its bands miss their level (``clear``)."""
        return [self._sentence(r) for _, r in self.judged[self.judged["clear"]].iterrows()]

    @property
    def baselines(self) -> list[str]:
        """The baselines' names (point fits of laws), as in the ``mape_<law>`` columns."""
        return [c[len("mape_"):] for c in self.table.columns if c.startswith("mape_")]

    @property
    def worse_than_baselines(self) -> list[str]:
        """One sentence per held-out group a baseline predicts better than the fit (by MAPE)."""
        if not self.baselines:
            return []
        held = self.table[(self.table["where"] == HELD_OUT) & (self.table["beats_baselines"] == False)]  # noqa: E712
        out = []
        for _, r in held.iterrows():
            best = min((b for b in self.baselines if np.isfinite(r[f"mape_{b}"])), key=lambda b: r[f"mape_{b}"])
            dom = "every domain" if r["domain"] == "*" else r["domain"]
            out.append(f"{r['target']} loss, {dom}: the point fit of {best} predicts these runs better "
                       f"({r[f'mape_{best}']:.2f}% against {r['mape']:.2f}%)")
        return out

    @property
    def outside(self) -> list[str]:
        """One sentence per group outside the calibrated range by less than its few runs can establish."""
        j = self.judged
        return [self._sentence(r) for _, r in j[(j["verdict"] != "calibrated") & ~j["clear"]].iterrows()]

    def _sentence(self, r: pd.Series) -> str:
        lo, hi = band_range(self.ci)
        cover = (f"{r['coverage']:.2f} inside (range {lo:.2f}-{hi:.2f}; from {int(r['runs'])} runs, "
                 f"{r['plausible_lo']:.2f}-{r['plausible_hi']:.2f} plausible)")
        if r["verdict"] == "too narrow":
            side = "the law predicts too high" if r["below"] > r["above"] else "the law predicts too low"
            what = (f"bands too narrow: {cover}; {r['below']:.0%} below, {r['above']:.0%} above: {side} "
                    f"({r['bias']:+.1f}%)")
        else:
            what = (f"bands too wide: {cover} at {r['mape']:.1f}% error, band {r['width']:.0f}% of the loss: "
                    "they overstate the uncertainty")
        dom = "every domain" if r["domain"] == "*" else r["domain"]
        return f"{r['target']} loss, {dom}: {what}"

    def summary(self) -> str:
        """One line: whether the held-out measurements sit in the bands as often as their level says."""
        t = self.table
        whole = t.drop_duplicates(["target", "where"], keep="last")  # each target's "*" row, or its one domain's
        held = whole[whole["where"] == HELD_OUT]
        n_in = int(whole.loc[whole["where"] == IN_FIT, "rows"].max()) if (whole["where"] == IN_FIT).any() else 0
        tail = (f" ({n_in} row{'s' if n_in != 1 else ''} in the fit's data, not a test of extrapolation)"
                if n_in else "")
        if self.warmup_rows:
            tail += (f" ({self.warmup_rows} row{'s' if self.warmup_rows != 1 else ''} inside their runs' LR warm-up "
                     "not scored: the fit leaves the warm-up out)")
        if held.empty:
            return (f"measured losses: all {n_in} rows are in the fit's data: in-sample, so the bands are not "
                    "tested; check the fit on runs it did not see")
        if self.ok is None:
            return f"measured losses: too few held-out runs to judge the {self.ci:.0%} bands (fewer than {MIN_RUNS})"
        lo, hi = band_range(self.ci)
        cells = "; ".join(f"{r['target']} {r['mape']:.2f}% error, {r['coverage']:.2f} inside"
                          for _, r in held.iterrows())
        if not self.ok:
            head = (f"MISCALIBRATED: in {len(self.problems)} group(s) the held-out runs rule out that the bands hold "
                    f"{self.ci:.0%} of them")
        elif self.outside:
            head = (f"held-out measurements: {len(self.outside)} group(s) outside {lo:.2f}-{hi:.2f}, each by less "
                    "than its few runs can establish")
        else:
            head = "held-out measurements: the bands hold them as calibrated"
        return f"{head} ({self.ci:.0%} bands; {cells}){self._baseline_words(held)}{tail}"

    def _baseline_words(self, held: pd.DataFrame) -> str:
        """``"; point fits L3 / L1: general 3.64 / 3.61%, ..."`` (empty without baselines)."""
        if not self.baselines:
            return ""
        cells = ", ".join(f"{r['target']} " + " / ".join(f"{r[f'mape_{b}']:.2f}" for b in self.baselines) + "%"
                          for _, r in held.iterrows())
        return f"; point fits {' / '.join(self.baselines)}: {cells}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``ci``, the calibrated range, ``ok``, ``summary``, ``problems``, ``outside``, the groups."""
        return {"ci": self.ci, "range": list(band_range(self.ci)), "ok": self.ok, "summary": self.summary(),
                "problems": self.problems, "outside": self.outside, "warmup_rows": self.warmup_rows,
                "worse_than_baselines": self.worse_than_baselines,
                "groups": to_jsonable(self.table.to_dict(orient="records"))}

    def display(self) -> pd.DataFrame:
        """:attr:`table` as text cells, one column per figure a reader needs: what ``predict`` and the report show.

        Columns: ``target``, ``domain``, ``rows are``, ``runs``, ``points``, ``MAPE %``, ``bias %`` (+: the law
        predicts too high), ``inside`` (the share inside the band), ``plausible`` (the coverage the runs allow,
        90%), ``below / above``, ``band %`` (mean width, % of the loss), ``MAPE % <baselines>`` with baselines,
        ``verdict`` (``", clearly"`` where the runs establish the miss). :data:`DISPLAY_LEGEND` says so in words.
        """
        t = self.table

        def fmt(col: str, spec: str) -> list[str]:
            return ["-" if not np.isfinite(float(v)) else format(float(v), spec) for v in t[col]]

        lo, hi, below, above = (fmt(c, ".2f") for c in ("plausible_lo", "plausible_hi", "below", "above"))
        out = pd.DataFrame({"target": t["target"].astype(str), "domain": t["domain"].astype(str),
                            "rows are": t["where"].astype(str), "runs": t["runs"].astype(int).astype(str),
                            "points": t["rows"].astype(int).astype(str), "MAPE %": fmt("mape", ".2f"),
                            "bias %": fmt("bias", "+.2f"), "inside": fmt("coverage", ".2f"),
                            "plausible": [f"{a}-{b}" for a, b in zip(lo, hi, strict=True)],
                            "below / above": [f"{a} / {b}" for a, b in zip(below, above, strict=True)],
                            "band %": fmt("width", ".1f")}, index=t.index)
        if self.baselines:
            cells = zip(*(fmt(f"mape_{b}", ".2f") for b in self.baselines), strict=True)
            out[f"MAPE % {' / '.join(self.baselines)}"] = [" / ".join(c) for c in cells]
        out["verdict"] = [v + (", clearly" if c else "") for v, c in zip(t["verdict"], t["clear"], strict=True)]
        return out

    def __str__(self) -> str:
        return "\n".join([self.summary(), *(f"  {p}" for p in self.problems),
                          *(f"  (not established) {p}" for p in self.outside),
                          *(f"  {p}" for p in self.worse_than_baselines)])


def plausible_coverage(shares: np.ndarray, prob: float = 0.9) -> tuple[float, float]:
    """The central ``prob`` range of a band's coverage that runs with these inside-shares allow.

    A run is the unit of evidence (its checkpoints share its offset, so they miss together): with ``k`` the sum of
    the runs' inside-shares and ``n`` the runs, Jeffreys' Beta(k + 1/2, n - k + 1/2). Conservative when a run's
    checkpoints are less correlated than that.
    """
    n, k = float(len(shares)), float(np.sum(shares))
    q = stats.beta.ppf([(1 - prob) / 2, 1 - (1 - prob) / 2], k + 0.5, n - k + 0.5)
    return float(q[0]), float(q[1])


def band_range(ci: float) -> tuple[float, float]:
    """The coverage a ``ci`` band must reach on held-out measurements to be called calibrated."""
    return max(0.0, ci - BAND_RANGE[0]), min(1.0, ci + BAND_RANGE[1])


def check_predictions(pred: pd.DataFrame, ci: float, fitted: pd.DataFrame | None = None,
                      baselines: Mapping[str, pd.DataFrame] | None = None, *,
                      zero_ratio: bool = True, warmup: bool = False) -> PredictionCheck:
    """Score predictions ``pred`` (``predict``'s output, measured ``loss_<target>`` columns kept) against them.

    ``fitted``: the fit's data; rows found there (the same run and checkpoint, :func:`_in_fit`) are scored apart
    as in-sample. A target is scored on the rows with a measured loss and a finite band. ``baselines``: ``{name:
    frame}`` of other predictions of the same rows (``loss_<target>_mean``, e.g. the paper's point fits,
    :func:`bayes_dcpt.fitting.baselines.point_baselines`), scored beside the fit's on the same rows.
    ``zero_ratio=False`` (a law that does not describe a loss measured with none of its own corpus, the
    posterior's ``fits_zero_ratio``): those rows (domain loss at r = 0, general loss at r = 1) are not scored.
    ``warmup=True`` (a fit that leaves its runs' LR warm-up out, ``burn_in="warmup"``): the rows inside their run's
    warm-up (:func:`~bayes_dcpt.data.warmup.in_warmup`, from ``pred``'s schedule or ``lr`` column) are not scored, and
    counted (:attr:`PredictionCheck.warmup_rows`): the law describes the loss after the warm-up's transient, and
    nobody stops CPT inside it.
    """
    inside = _in_fit(pred, fitted)
    warm = in_warmup(pred) if warmup else np.zeros(len(pred), bool)
    if "run_id" in pred:
        runs = pred["run_id"].astype(str)
    else:  # unnamed runs: one per (domain, N, r, seed), the data schema's own convention
        keys = [k for k in ("domain", "n_params", "r_domain", "seed") if k in pred]
        runs = pred[keys].astype(str).agg("|".join, axis=1)
    rows = []
    shares: dict[tuple[str, str], list[float]] = {}
    for t in ("general", "domain"):
        cols = [f"loss_{t}", f"loss_{t}_mean", f"loss_{t}_lo", f"loss_{t}_hi"]
        if not all(c in pred for c in cols):
            continue
        y, m, lo, hi = (pd.to_numeric(pred[c], errors="coerce").to_numpy(float) for c in cols)
        ok = np.isfinite(y) & (y > 0) & np.isfinite(m) & np.isfinite(lo) & np.isfinite(hi) & ~warm
        if not zero_ratio:
            r = pd.to_numeric(pred["r_domain"], errors="coerce").to_numpy(float)
            ok &= (r if t == "domain" else 1.0 - r) > 0
        for where, mask in ((HELD_OUT, ok & ~inside), (IN_FIT, ok & inside)):
            if not mask.any():
                continue
            doms = pred.loc[mask, "domain"].astype(str)
            groups = [(d, mask & (pred["domain"].astype(str) == d).to_numpy()) for d in sorted(doms.unique())]
            if len(groups) > 1:
                groups.append(("*", mask))
            shares[(t, where)] = list(_run_inside(y[mask], lo[mask], hi[mask], runs[mask]))
            for d, g in groups:
                scores = _scores(y[g], m[g], lo[g], hi[g], runs[g], ci, where)
                rows.append({"target": t, "domain": d, "where": where, **scores,
                             **_baseline_scores(baselines, t, g, y, scores["mape"])})
    cols = ["target", "domain", "where", "rows", "runs", "mape", "bias", "coverage", "plausible_lo",
            "plausible_hi", "below", "above", "width", "verdict", "clear"]
    if baselines:
        cols += [*(f"mape_{b}" for b in baselines), "beats_baselines"]
    return PredictionCheck(float(ci), pd.DataFrame(rows, columns=cols), shares, int(warm.sum()))


def _scores(y: np.ndarray, m: np.ndarray, lo: np.ndarray, hi: np.ndarray, runs: pd.Series, ci: float,
            where: str) -> dict[str, Any]:
    """The scores of one group of measurements (``runs``: each row's run) and its verdict."""
    cover = float(np.mean((y >= lo) & (y <= hi)))
    shares = _run_inside(y, lo, hi, runs)
    judged = judge_coverage(cover, shares, ci)
    if where == IN_FIT:
        judged |= {"verdict": IN_FIT, "clear": False}
    return {"rows": int(y.size), "runs": len(shares), "mape": float(100 * np.mean(np.abs(m - y) / y)),
            "bias": float(100 * np.mean((m - y) / y)), "coverage": cover, "plausible_lo": judged["plausible_lo"],
            "plausible_hi": judged["plausible_hi"], "below": float(np.mean(y < lo)), "above": float(np.mean(y > hi)),
            "width": float(100 * np.mean((hi - lo) / y)), "verdict": judged["verdict"], "clear": judged["clear"]}


def judge_coverage(cover: float, shares: np.ndarray, ci: float) -> dict[str, Any]:
    """The verdict on a ``ci`` band that held ``cover`` of the measurements of runs with inside-shares ``shares``.

    ``{"verdict", "clear", "plausible_lo", "plausible_hi"}``: ``"too few runs"`` under :data:`MIN_RUNS`, else
    ``"calibrated"`` inside :func:`band_range`, ``"too narrow"`` or ``"too wide"`` outside it; ``clear`` when the
    runs also rule the level ``ci`` out (:func:`plausible_coverage`). What ``predict``'s check and the closed
    loop's check of its own probes both judge by.
    """
    p_lo, p_hi = plausible_coverage(shares)
    lo_ok, hi_ok = band_range(ci)
    if len(shares) < MIN_RUNS:
        verdict = "too few runs"
    else:
        verdict = "too narrow" if cover < lo_ok - 1e-9 else "too wide" if cover > hi_ok + 1e-9 else "calibrated"
    clear = verdict in ("too narrow", "too wide") and not p_lo <= ci <= p_hi
    return {"verdict": verdict, "clear": bool(clear), "plausible_lo": p_lo, "plausible_hi": p_hi}


def _run_inside(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, runs: pd.Series) -> np.ndarray:
    """Each run's share of its measurements inside ``[lo, hi]`` (``runs``: each row's run)."""
    inside = ((y >= lo) & (y <= hi)).astype(float)
    return pd.Series(inside, index=np.asarray(runs)).groupby(level=0).mean().to_numpy()


def _baseline_scores(baselines: Mapping[str, pd.DataFrame] | None, target: str, g: np.ndarray, y: np.ndarray,
                     mape: float) -> dict[str, Any]:
    """Each baseline's MAPE on the group's rows, and whether the fit's is no worse than the best of them."""
    if not baselines:
        return {}
    out: dict[str, Any] = {}
    for b, frame in baselines.items():
        col = f"loss_{target}_mean"
        p = frame[col].to_numpy(float)[g] if col in frame else np.full(int(g.sum()), np.nan)
        ok = np.isfinite(p)
        out[f"mape_{b}"] = float(100 * np.mean(np.abs(p[ok] - y[g][ok]) / y[g][ok])) if ok.any() else np.nan
    known = [v for v in out.values() if np.isfinite(v)]
    out["beats_baselines"] = bool(mape <= min(known) + 1e-12) if known else None
    return out


def _in_fit(pred: pd.DataFrame, fitted: pd.DataFrame | None) -> np.ndarray:
    """Per row of ``pred``: whether it is a measurement the fit had.

    The same run and checkpoint (``run_id`` and tokens) where both tables name their runs; else the same domain,
    N, D, r (and seed where both have one).
    """
    if fitted is None or fitted.empty or pred.empty:
        return np.zeros(len(pred), bool)
    if "run_id" in pred and "run_id" in fitted:
        keys = ["run_id", "tokens"]
    else:
        keys = list(_KEYS) + (["seed"] if "seed" in pred and "seed" in fitted else [])

    def key(df: pd.DataFrame) -> pd.Series:
        parts = []
        for k in keys:
            if k in ("domain", "run_id"):
                parts.append(df[k].astype(str))
            else:
                v = pd.to_numeric(df[k], errors="coerce").to_numpy(float)
                parts.append(pd.Series([f"{x:.6g}" for x in v], index=df.index))
        return pd.concat(parts, axis=1).agg("|".join, axis=1)

    return key(pred).isin(set(key(fitted))).to_numpy()
