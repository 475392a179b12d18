"""Part VI, a proof of concept you can defend (lesson 10): KPIs, candidates measured alike, the decision memo.

Imports the core, `inside` and `deploy` (it re-measures the candidates of lessons 07 and 08).
"""
