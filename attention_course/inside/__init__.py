"""Part III, looking inside and transfer (lessons 06, 07): the pretrained MiniLM, attention views, explanations.

Imports the core only.
"""
