"""One file per network; shared layers live in ``inpaintstudio.models.layers``."""
