"""The baselines crime analysts use, from last week's count to a grid Hawkes process."""
