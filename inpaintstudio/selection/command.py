"""``inpaintstudio select PHOTO --box x0,y0,x1,y1 [--point x,y,+|-]... -o mask.png``: a selection to a mask PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_select_command", "parse_box", "parse_point"]


def parse_box(text: str) -> tuple[int, int, int, int]:
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"a box is x0,y0,x1,y1 in whole pixels, got {text!r}")
    return values  # type: ignore[return-value]


def parse_point(text: str) -> tuple[int, int, bool]:
    parts = text.replace(" ", "").split(",")
    if len(parts) != 3 or parts[2] not in ("+", "-"):
        raise argparse.ArgumentTypeError(f"a click is x,y,+ (add) or x,y,- (remove), got {text!r}")
    try:
        return int(parts[0]), int(parts[1]), parts[2] == "+"
    except ValueError:
        raise argparse.ArgumentTypeError(f"click coordinates are whole pixels, got {text!r}") from None


def add_select_command(subparsers: argparse._SubParsersAction) -> None:
    """Add ``select`` to the ``inpaintstudio`` parser."""
    p = subparsers.add_parser("select", help="select an object with a box and/or clicks; write its mask (PNG)")
    p.add_argument("photo", type=Path)
    p.add_argument("--box", type=parse_box, help="x0,y0,x1,y1 in photo pixels (x1, y1 exclusive)")
    p.add_argument("--point", type=parse_point, action="append", default=[], metavar="X,Y,+|-",
                   help="a click: + adds to the object, - removes; repeat for more")
    p.add_argument("--method", default="auto", choices=("auto", "mobile_sam", "grabcut"),
                   help="auto: MobileSAM when its weights are present, else GrabCut (default)")
    p.add_argument("--grow", type=int, default=0, metavar="N", help="grow the mask by N pixels (negative shrinks)")
    p.add_argument("--device", default="cpu", help="where MobileSAM runs: cpu (default), auto, cuda, cuda:N, mps")
    p.add_argument("-o", "--output", type=Path, required=True, help="mask PNG (white = selected)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_run_select)


def _run_select(args: argparse.Namespace) -> int:
    import numpy as np

    from inpaintstudio import io
    from inpaintstudio.errors import EXIT_OK
    from inpaintstudio.io.outputs import OutputPlan
    from inpaintstudio.selection import Prompt, Selector
    from inpaintstudio.selection.types import check_prompt

    if args.box is None and not args.point:
        raise io.InputError("give a box (--box x0,y0,x1,y1) and/or clicks (--point x,y,+)")
    if io.write_format(args.output).lower() != "png":
        raise io.InputError(f"a mask is written as PNG (lossless); {io.printable_path(args.output)} is not a .png")
    plan = OutputPlan(overwrite=args.overwrite)
    plan.protect([args.photo])
    plan.claim(args.output, source=args.photo)
    loaded = io.load_image(args.photo)
    prompt = check_prompt(Prompt(box=args.box, points=tuple(args.point)), loaded.rgb.shape[:2])
    if args.output.exists() and not args.overwrite:  # refused before any work (the plan checks again on writing)
        raise io.OverwriteError(f"{io.printable_path(args.output)} already exists: pass --overwrite to replace it, "
                                "or choose another name")
    selector = Selector(loaded.rgb, method=args.method, device=args.device)
    result = selector.select(prompt, grow_px=args.grow)
    print(f"method: {selector.method_note}", file=sys.stderr)
    white = np.repeat((result.mask.astype(np.uint8) * 255)[..., None], 3, axis=2)
    saved = plan.write_image(args.output, white, metadata={"inpaintstudio:selection": result.method})
    print(f"{io.printable_path(saved.path)[1:-1]}  ({result.note}; {result.seconds:.2f} s)")
    return EXIT_OK
