"""Model cards: the typed schema, the builder and the renderers.

Import from the submodules (``governance.cards.schema``, ``.builder``,
``.render``); this package imports nothing so the schema stays light.
"""

__all__: list[str] = []
