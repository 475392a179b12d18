"""Lesson 08, serving: generation as a server runs it, distillation, quantisation, and what serving costs.

Imports the core, and `inside` for lesson 07's fine-tuned teacher and students.
"""
