"""One module per chapter: its variants, sweeps, experiments and verdict rules.

Generic modules (``measure``, ``receptive``, ``explore``, ...) name no chapter; everything that
belongs to one question of the book lives here, so a notebook calls its chapter's module in a
line or two and every verdict rule is a tested function of typed results.
"""
