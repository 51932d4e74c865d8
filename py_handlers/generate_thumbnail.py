"""Lambda entry point of `generate-thumbnail`. Everything else ships once, in the layer."""

from kiray_imaging.lambda_pipeline import make_handler

handler = make_handler("thumbnail")
