"""What every workflow script does first: send its log to the rule's log file, and remove the temporaries a
killed earlier start of the same job left beside its outputs."""

from __future__ import annotations

import logging
import sys
import warnings

from .fileio import remove_stale_temporaries


def setup_log(smk) -> logging.Logger:
    """Route logging, warnings and uncaught exceptions of a Snakemake script to ``smk.log[0]``; remove the
    stale temporaries of ``smk.output`` (fileio.remove_stale_temporaries)."""
    handler = logging.FileHandler(smk.log[0], mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler, logging.StreamHandler(sys.stderr)]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    log = logging.getLogger(f"etasvae.{smk.rule}")

    def excepthook(kind, value, tb):
        log.error("%s failed", smk.rule, exc_info=(kind, value, tb))

    sys.excepthook = excepthook
    for path in remove_stale_temporaries(smk.output):
        log.info("removed %s, a temporary left by a killed run of this job", path)
    return log
