"""The credible-interval report of a fit: what it says and how it is rendered.

What it says: data, law and priors, parameters, diagnostics, fitted curves against the data, decisions and
the next probes. How it is rendered: one self-contained HTML file, or Markdown with PNGs beside it.
"""

from bayes_dcpt.report.build import FORMATS, Report, build_report, default_candidates, default_usage_inputs

__all__ = ["FORMATS", "Report", "build_report", "default_candidates", "default_usage_inputs"]
