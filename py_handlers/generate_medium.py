"""Lambda entry point of `generate-medium`. Everything else ships once, in the layer."""

from kiray_imaging.lambda_pipeline import make_handler

handler = make_handler("medium")
