"""M×T's card (torch-free; the network is :mod:`inpaintstudio.models.mxt.network`).

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile
from inpaintstudio.weights.sources import FACES, SCENES, Source, drive_source

SIZE_MULTIPLE = 8  # three pixel-unshuffles

CARDS: list[ModelCard] = [
    ModelCard(
        name="mxt",
        family="mxt",
        title="M×T (Mamba × Transformer)",
        kind="deep",
        paper="Chen et al., M×T: Mamba × Transformer for Image Inpainting, BMVC 2024",
        paper_url="https://arxiv.org/abs/2407.16126",
        code_url="https://github.com/ChrisChen1023/MxT",
        licence="MIT (the repository's LICENSE file); weights: the training sets' terms",
        working_size=256,
        tile_size=256,
        tile_overlap=64,
        context_margin=64,
        input=InputConvention(
            value_range=(0.0, 1.0),
            hole_fill=1.0,
            mask_hole_value=1,
            pad_multiple=SIZE_MULTIPLE,
            pad_mode="reflect",
            min_size=SIZE_MULTIPLE,
        ),
        weights=(
            WeightFile(
                filename="mxt.safetensors",
                sha256=None,
                source=(
                    "one Google-Drive folder linked from the README of https://github.com/ChrisChen1023/MxT "
                    "(CelebA-HQ / Places2 generators; file names inside are not listed)"
                ),
                official_filename="InpaintingModel_gen.pth",
            ),
        ),
        capabilities=frozenset(),
        cpu_seconds=6.0,
        module="inpaintstudio.models.mxt.network",
        notes=(
            "Trained at 256×256; H, W must be multiples of 8. Released-code behaviour: Mamba branch and SRSA run in "
            "parallel and are fused by a 1×1 conv (thesis text reads sequential); raster scan only (the spiral "
            "order the official wrapper computes is never applied). [INFERRED] pad_mode reflect and min_size 8 are "
            "studio choices (the paper and code state neither). The thesis' 180 M parameters do not match the released "
            "definitions (155 257 780 registered, 37 610 544 used). Which dataset each published checkpoint was "
            "trained on is not listed: the variants pick the generator by a dataset name in its folder path."
        ),
    )
]

# where the authors publish the weights, one entry per variant (the first is the default)
_PAGE = "https://github.com/ChrisChen1023/MxT"
_FOLDER = "1s_EqqBkJRy9VE_1OUD9rLhqua2LwtBXQ"
_NOTE = ("the authors' README links one folder without naming its datasets; the generator is picked by a "
         "dataset name in its path")
SOURCES: tuple[Source, ...] = (
    drive_source("mxt", "places2", "Places2", SCENES, _FOLDER, _PAGE,
                 pick=("*places*InpaintingModel_gen.pth", "*places*gen*.pth"), note=_NOTE),
    drive_source("mxt", "celebahq", "CelebA-HQ", FACES, _FOLDER, _PAGE,
                 pick=("*celeba*InpaintingModel_gen.pth", "*celeba*gen*.pth"), note=_NOTE),
)
