"""Part II, parallelism and training (lessons 04, 04b, 05): the GPT training loop, its benchmarks, sharding.

Imports the core only.
"""
