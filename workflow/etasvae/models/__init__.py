"""The models (docs/design.md, *The model layer*): training machinery shared by every model (``training``),
the MLP VAE (``mlp``), the sequence VAE and its decoder (``sequence``, ``decoders``, ``sequence_training``),
the conditional surrogate that composes the sequence VAE (``conditional``), the training entry point
(``train``) and the one model-file format (``files``). Import from the module that defines a name: this
package re-exports nothing.
"""
