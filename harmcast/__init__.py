"""harmcast: area-level weekly violence forecasts with a governance registry."""

__version__ = "0.1.0"
