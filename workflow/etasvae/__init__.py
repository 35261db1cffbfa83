"""etasvae: ETAS catalogs, windowed features, variational autoencoders and their statistical evaluation."""

__version__ = "0.1.0"
