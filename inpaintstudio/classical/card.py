"""The weight-free engines' cards: PatchMatch (the default), OpenCV Telea and Navier–Stokes (the engines
are :mod:`inpaintstudio.classical.engines`)."""

from inpaintstudio.modelcard import InputConvention, ModelCard

_OPENCV_CODE = "https://github.com/opencv/opencv"

_CLASSICAL_INPUT = InputConvention(value_range=(0.0, 1.0), hole_fill=None, pad_multiple=1)

CARDS = [
    ModelCard(
        name="patchmatch",
        family="patchmatch",
        title="PatchMatch, multi-scale (exemplar-based, default)",
        kind="classical",
        paper="Barnes et al., PatchMatch: A Randomized Correspondence Algorithm for Structural Image Editing, 2009",
        paper_url="https://gfx.cs.princeton.edu/pubs/Barnes_2009_PAR/",
        code_url="https://github.com/invoke-ai/PyPatchMatch",
        licence="MIT",
        # the largest region the multi-scale fill takes whole (inpaintstudio.classical.engines.MAX_SIDE); it fills
        # big regions coarse and refines them itself, so the pipeline need not downsize them
        working_size=3072,
        tile_size=3072,
        tile_overlap=128,
        context_margin=128,
        input=_CLASSICAL_INPUT,
        module="inpaintstudio.classical.engines",
        notes="Copies texture from the rest of the crop, at full resolution (big regions: coarse fill, then "
        "refined level by level); best of the weight-free engines for object removal.",
    ),
    ModelCard(
        name="opencv_telea",
        family="opencv_telea",
        title="OpenCV Telea (fast marching)",
        kind="classical",
        paper="Telea, An Image Inpainting Technique Based on the Fast Marching Method, 2004",
        paper_url="https://doi.org/10.1080/10867651.2004.10487596",
        code_url=_OPENCV_CODE,
        licence="Apache-2.0",
        working_size=2048,
        tile_size=2048,
        tile_overlap=64,
        context_margin=32,
        input=_CLASSICAL_INPUT,
        module="inpaintstudio.classical.engines",
        notes="Smooth diffusion from the border; good for thin scratches, blurry on large holes.",
    ),
    ModelCard(
        name="opencv_ns",
        family="opencv_ns",
        title="OpenCV Navier–Stokes",
        kind="classical",
        paper="Bertalmío, Bertozzi, Sapiro, Navier-Stokes, Fluid Dynamics, and Image and Video Inpainting, 2001",
        paper_url="https://doi.org/10.1109/CVPR.2001.990497",
        code_url=_OPENCV_CODE,
        licence="Apache-2.0",
        working_size=2048,
        tile_size=2048,
        tile_overlap=64,
        context_margin=32,
        input=_CLASSICAL_INPUT,
        module="inpaintstudio.classical.engines",
        notes="Isophote-following diffusion; like Telea, best on thin defects.",
    ),
]
