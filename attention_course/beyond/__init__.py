"""Part V, beyond text (lesson 09): a Vision Transformer, image and text together, a time series forecaster.

Imports the core, and `inside` for attention rollout over the image.
"""
