"""The rolling-origin backtest: refits, baselines, scoring."""
