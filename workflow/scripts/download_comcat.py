"""Download a dataset's events from the ComCat FDSN event service (format=csv), once; the file is the cache."""

from etasvae.realdata import download_comcat
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
n = download_comcat(p.url, dict(p.query), smk.output[0], **dict(p.download), log=log.warning)
log.info("downloaded %d events from %s into %s", n, p.url, smk.output[0])
