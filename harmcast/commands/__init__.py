"""Thin typer commands, one module per part of the pipeline."""
