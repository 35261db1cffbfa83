"""Download a dataset's events from the ComCat FDSN event service (format=csv), once; the file is the cache."""

import sys

smk = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, f"{smk.scriptdir}/..")
from etasvae.scripting import setup_log  # noqa: E402

log = setup_log(smk)

from etasvae.realdata import download_comcat  # noqa: E402

p = smk.params
n = download_comcat(p.url, dict(p.query), smk.output[0], **dict(p.download), log=log.warning)
log.info("downloaded %d events from %s into %s", n, p.url, smk.output[0])
