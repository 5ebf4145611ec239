"""Datasets: the embedded example grid and readers for the public scaling-law data in ``../shared/data``.

* :func:`load_example` -- the example CPT grid shipped with the package (see ``EXAMPLE.md`` beside it
  for how it was produced and how to regenerate it).
* :func:`load_schedules` -- the LR-schedule grid shipped with the package: the same probes under four CPT
  learning-rate schedules with whole loss curves, in the CPT dynamics law's schema (``SCHEDULES.md``).
* :func:`load_mixinglaws_cpt` -- Pythia-70M continual pre-training on Pile + Python (Ye et al., Data
  Mixing Laws): 5 ratios x 10 checkpoints plus the base model.
* :func:`load_datablations_mix` -- 4.2B models trained on C4 + Python at 9 ratios (Muennighoff et al.).
* :func:`load_slimpajama` -- the (mixture, N, D) SlimPajama grid (provenance unverified) with one source
  as the "domain".
* :func:`load_epoch_chinchilla` -- the Chinchilla points digitised by Epoch AI.

The public data is read in place, read-only, from ``$BAYES_DCPT_SHARED_DATA`` or ``../shared/data``
(relative to the working directory or to the repository root); :class:`DatasetUnavailable` is raised
when it is absent so that tests and benchmarks can skip cleanly.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import BayesDCPTError

__all__ = [
    "DatasetUnavailable",
    "example_path",
    "load_datablations_mix",
    "load_epoch_chinchilla",
    "load_example",
    "load_long_cpt",
    "load_mixinglaws_cpt",
    "load_schedules",
    "load_slimpajama",
    "long_cpt_path",
    "schedules_path",
    "shared_data_dir",
    "trainer_run_path",
]

MIXINGLAWS_N = 18_915_328  # Pythia-70M non-embedding parameters (mixinglaws pipeline/utils.py)


class DatasetUnavailable(BayesDCPTError, FileNotFoundError):
    """A public dataset folder is not present on this machine."""


def shared_data_dir() -> Path:
    """Locate ``../shared/data`` (or ``$BAYES_DCPT_SHARED_DATA``); raise :class:`DatasetUnavailable`.

    When ``BAYES_DCPT_SHARED_DATA`` is set it is the only place looked at (a path that is not a folder
    raises :class:`DatasetUnavailable`, which is also how a test simulates a machine without the data).
    """
    env = os.environ.get("BAYES_DCPT_SHARED_DATA")
    if env is not None:
        # an explicit setting wins: a wrong path is reported, never silently replaced by another folder
        if Path(env).is_dir():
            return Path(env).resolve()
        raise DatasetUnavailable(f"BAYES_DCPT_SHARED_DATA={env!r} is not a folder")
    repo_root = Path(__file__).resolve().parents[2]
    candidates = [Path.cwd() / ".." / "shared" / "data", repo_root / ".." / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    raise DatasetUnavailable("the public data folder ../shared/data is not present (set BAYES_DCPT_SHARED_DATA)")


def _shared_file(*parts: str) -> Path:
    p = shared_data_dir().joinpath(*parts)
    if not p.is_file():
        raise DatasetUnavailable(f"{p} is not present")
    return p


def example_path() -> Path:
    """Path of the embedded example CSV."""
    return Path(str(resources.files("bayes_dcpt.datasets").joinpath("example_cpt.csv")))


def trainer_run_path() -> Path:
    """Folder of the embedded Trainer logs: ``trainer_state.json``, ``tb/``, ``wandb-history.csv``, ``runs.toml``.

    Real output of a tiny ``transformers.Trainer`` run (``scripts/make_trainer_example.py``), to try
    ``bayes-dcpt data import --from trainer-state|tensorboard|wandb-csv`` on.
    """
    return Path(str(resources.files("bayes_dcpt.datasets").joinpath("trainer_run")))


def long_cpt_path() -> Path:
    """Path of the embedded long-CPT CSV."""
    return Path(str(resources.files("bayes_dcpt.datasets").joinpath("long_cpt.csv")))


def load_long_cpt() -> pd.DataFrame:
    """The embedded long-CPT grid: 2 domains x 3 sizes x 7 ratios, 2^21 CPT tokens, 17 checkpoints (LONG_CPT.md).

    The second real probe grid, for extrapolation in tokens (four times the example's) and in model size.
    """
    p = long_cpt_path()
    if not p.is_file():
        raise DatasetUnavailable(f"the long-CPT dataset {p} is missing from the installation")
    return _data.load(p)


def load_example() -> pd.DataFrame:
    """The embedded example grid (real probe runs of the probe runner on CPU; see EXAMPLE.md)."""
    p = example_path()
    if not p.is_file():
        raise DatasetUnavailable(f"the example dataset {p} is missing from the installation")
    return _data.load(p)


def schedules_path() -> Path:
    """Path of the embedded LR-schedule CSV."""
    return Path(str(resources.files("bayes_dcpt.datasets").joinpath("schedules_cpt.csv")))


def load_schedules() -> pd.DataFrame:
    """The embedded LR-schedule grid (real CPU probes under constant, cosine, WSD and a no-re-warmup schedule).

    Validated by :func:`bayes_dcpt.data.dynamics.load_dynamics`: the D-CPT columns plus ``step``,
    ``schedule`` and ``base_schedule``. Run ids end in ``|sched=<name>`` (``const``, ``cosine``, ``wsd``,
    ``flat``). See ``SCHEDULES.md`` beside the file for how it was made.
    """
    from bayes_dcpt.data.dynamics import load_dynamics

    p = schedules_path()
    if not p.is_file():
        raise DatasetUnavailable(f"the schedules dataset {p} is missing from the installation")
    return load_dynamics(p)


def load_mixinglaws_cpt() -> pd.DataFrame:
    """Pythia-70M CPT on Pile (general) + Python (domain): 50 checkpoints and the base model.

    ``tokens`` = CPT step x 2^20 (the mixinglaws pipeline's batch, as SOURCE.md notes: assumed);
    ``loss_general`` = the authors' weighted Pile loss; ``loss_domain`` = StarCoder-Python loss.
    """
    raw = pd.read_csv(_shared_file("mixinglaws", "mixinglaws_cpt_pythia70m_general_vs_domain.csv"))
    df = pd.DataFrame(
        {
            "domain": "python",
            "n_params": float(MIXINGLAWS_N),
            "tokens": raw["cpt_tokens_assumed"].astype(float),
            "r_domain": raw["python_prop"].astype(float),
            "loss_general": raw["general_loss_pile_weighted"].astype(float),
            "loss_domain": raw["domain_loss_python"].astype(float),
            "run_id": raw["run"].astype(str),
            "step": raw["cpt_step"],
        }
    )
    return _data.load(df)


def load_datablations_mix() -> pd.DataFrame:
    """4.2B models trained from scratch on C4 (general) + Python (domain) at 10-90% Python, 84B tokens."""
    raw = pd.read_csv(_shared_file("datablations", "datablations_c4_python_mix_curves.csv"))
    df = pd.DataFrame(
        {
            "domain": "python",
            "n_params": raw["N_params"].astype(float),
            "tokens": raw["tokens_seen"].astype(float),
            "r_domain": raw["python_pct"].astype(float) / 100.0,
            "loss_general": raw["val_loss_c4"].astype(float),
            "loss_domain": raw["val_loss_python"].astype(float),
            "run_id": "c4py-" + raw["python_pct"].astype(int).astype(str),
        }
    )
    return _data.load(df.dropna(subset=["loss_general", "loss_domain"], how="all"))


_SLIM = ("arxiv", "book", "c4", "github", "commoncrawl", "stackexchange", "wikipedia")


def load_slimpajama(domain: str = "github", general: str = "c4") -> pd.DataFrame:
    """SlimPajama (mixture, N, D) grid with ``domain``'s weight as r and its loss as the domain loss.

    The general loss is ``general``'s validation loss (``"c4"`` by default, or ``"others"`` for the mean of
    the other six sources). **Provenance unverified** (see its SOURCE.md).
    """
    if domain not in _SLIM or (general not in _SLIM and general != "others") or general == domain:
        raise BayesDCPTError(f"choose domain and general among {_SLIM} (general may be 'others'), not equal")
    raw = pd.read_csv(_shared_file("slimpajama_mixture_nd", "dmsl_llm_slimpajama.csv"))
    if general == "others":
        gen = raw[[f"{s}_loss" for s in _SLIM if s != domain]].mean(axis=1)
    else:
        gen = raw[f"{general}_loss"]
    wcols = [f"weight_{s}" for s in _SLIM]
    mix_id = raw[wcols].round(4).astype(str).agg("-".join, axis=1)
    df = pd.DataFrame(
        {
            "domain": domain,
            "n_params": raw["model_size"].astype(float),
            "tokens": raw["n_tokens"].astype(float),
            "r_domain": raw[f"weight_{domain}"].astype(float),
            "loss_general": gen.astype(float),
            "loss_domain": raw[f"{domain}_loss"].astype(float),
            "run_id": "N=" + raw["model_size"].map("{:.4g}".format) + "|mix=" + mix_id,
            "mixture": mix_id,
        }
    )
    df = df.dropna(subset=["loss_general", "loss_domain"], how="all")
    return _data.load(df)


def load_epoch_chinchilla(drop_highest: int = 5) -> pd.DataFrame:
    """Chinchilla's points (N, D = FLOP / 6N, loss) as digitised by Epoch, dropping the 5 highest losses."""
    raw = pd.read_csv(_shared_file("epoch_chinchilla", "svg_extracted_data.csv"))
    raw = raw.sort_values("loss")
    if drop_highest:
        raw = raw.iloc[: len(raw) - drop_highest]
    n = raw["Model Size"].to_numpy(float)
    d = raw["Training FLOP"].to_numpy(float) / (6 * n)
    # all of the data is the general corpus: r_domain = 0, so the general loss's own share 1 - r_domain is 1
    # (with r_domain = 1 the Bayesian fit would skip every row as a zero-ratio observation)
    df = pd.DataFrame({"domain": "massivetext", "n_params": n, "tokens": d, "r_domain": 0.0,
                       "loss_general": raw["loss"].to_numpy(float), "loss_domain": np.nan,
                       "run_id": [f"chinchilla-{i}" for i in range(len(n))]})
    return _data.load(df)
