"""Forecast scores: deviance, hit rates and PAI, calibration, paired bootstrap margins."""
