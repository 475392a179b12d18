"""The core every part of the book builds on: attention, the GPT, the training toolkit, devices, data, size profiles.

Safe to reuse anywhere; it imports nothing from the parts above it.
"""
