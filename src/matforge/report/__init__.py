"""Self-contained HTML reports (plotly, offline: the plotly.js bundle is inlined, no CDN).

* :func:`matforge.report.model.model_report_html` — parity plot, residual histogram and
  calibration curve of a saved model's out-of-fold predictions (ROC and reliability curves for
  classifiers).

Top floor of the package: nothing else in matforge imports it.
"""

__all__ = ["model"]


def __getattr__(name: str):
    from matforge import _import_submodule

    return _import_submodule(__name__, name)  # matforge.report.x: no import of its own


def __dir__() -> list[str]:
    from matforge import _submodule_names

    return sorted({*globals(), *_submodule_names(__path__)})
