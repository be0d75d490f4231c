"""The studio's core: the engine interface (``engines``), from a card to a ready engine (``loading``), one
request to one result (``pipeline``), mask operations (``maskops``), comparison grids (``grid``) and the
parity check of the authors' golden outputs (``parity``). Nothing here imports a front end."""
