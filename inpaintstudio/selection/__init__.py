"""Select an object with a box or clicks: MobileSAM when its weights are present, GrabCut otherwise, and a
magic wand.

    from inpaintstudio.selection import Prompt, Selector, magic_wand

    sel = Selector(rgb)                                   # rgb: H x W x 3 uint8
    print(sel.method, sel.method_note)                    # "mobile_sam" | "grabcut", and why
    result = sel.select(Prompt(box=(40, 30, 300, 260), points=((120, 90, False),)), grow_px=4)
    result.mask                                           # H x W bool, True = selected

Modules: :mod:`.types` (prompt, result, checks), :mod:`.grabcut`, :mod:`.wand`, :mod:`.mobile_sam` (the
network), :mod:`.predictor` (:class:`Selector`), :mod:`.command` (``inpaintstudio select``). Importing this
package imports no torch.
"""

from inpaintstudio.selection.predictor import METHODS, Selector
from inpaintstudio.selection.types import Prompt, Selection, SelectionError
from inpaintstudio.selection.wand import magic_wand

__all__ = ["Prompt", "Selection", "Selector", "SelectionError", "magic_wand", "METHODS"]
