"""The synthetic city: a true violence process, and each agency's records of it."""
