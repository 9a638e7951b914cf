"""The weekly cycle: append a delivered week, score last week's forecast, watch the data.

Above ``training`` and ``governance`` in the layers: it reads the production
model through the registry and the policy thresholds, so it lives outside
``training/``, which never imports ``governance/`` or ``serving/``.
"""
