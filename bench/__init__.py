"""Measurement tools that compare kiray-imaging's renditions with other image libraries (make quality, make bench).

Not part of the shipped package: they run from the repository root in the project's .venv.
"""
