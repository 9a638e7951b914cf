"""Linking each agency's records to small areas: codes, coordinates, gazetteer, free text."""
