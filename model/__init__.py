"""PokeWatch's pure data, feature and fair-price model code.

It imports neither `service` nor `pipelines`.
"""
