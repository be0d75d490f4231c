"""HINT's card (torch-free; the network is :mod:`inpaintstudio.models.hint.network`).

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile
from inpaintstudio.weights.sources import FACES, SCENES, Source, drive_source

SIZE_MULTIPLE = 16  # three x1/2 MPDs, then the 2x2 average pool inside the latent SCAL

CARDS: list[ModelCard] = [
    ModelCard(
        name="hint",
        family="hint",
        title="HINT (High-quality INpainting Transformer)",
        kind="deep",
        paper=(
            "S. Chen, A. Atapour-Abarghouei, H. P. H. Shum, 'HINT: High-quality INpainting Transformer with "
            "Mask-Aware Encoding and Enhanced Attention', IEEE Transactions on Multimedia, 2024"
        ),
        paper_url="https://arxiv.org/abs/2402.14185",
        code_url="https://github.com/ChrisChen1023/HINT",
        licence=(
            "MIT (the repository's LICENSE file); weights: the training sets' terms (CelebA/CelebA-HQ "
            "non-commercial)"
        ),
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
            fixed_size=None,
            min_size=SIZE_MULTIPLE,
        ),
        weights=(
            WeightFile(
                filename="hint.safetensors",
                sha256=None,
                source=(
                    "Google Drive folders per dataset (CelebA-HQ, CelebA, Places2, Dunhuang) linked from the README "
                    "of https://github.com/ChrisChen1023/HINT"
                ),
                official_filename="InpaintingModel_gen.pth",
            ),
        ),
        capabilities=frozenset(),
        cpu_seconds=8.2,
        module="inpaintstudio.models.hint.network",
        notes=(
            "Trained and tested at 256x256; any H, W that are multiples of 16 run. Holes are filled with white "
            "(released code; the thesis writes zero fill with the opposite mask polarity). Output is the raw "
            "full image in [0, 1]; the pipeline composites. Importing InpaintingModel_gen.pth drops the unused, "
            "untrained refinement.* tensors of the released checkpoints and lists them. Each dataset's generator "
            "is a variant (hint:places2, hint:celebahq, hint:celeba, hint:dunhuang). "
            "[INFERRED] which convs follow the 'bias' flag "
            "(irrelevant for released weights: bias=False). Thesis parameter count 139 M vs 72,265,248 in the "
            "released definition (unexplained, the latter matches the checkpoints)."
        ),
    ),
]

# where the authors publish the weights, one entry per variant (the first is the default)
_PAGE = "https://github.com/ChrisChen1023/HINT"
SOURCES: tuple[Source, ...] = (
    drive_source("hint", "places2", "Places2", SCENES, "1mzHkz8sjA7uxgG1nTLiPZQKl1zITiTgV", _PAGE),
    drive_source("hint", "celebahq", "CelebA-HQ", FACES, "1DPmw5LSVxmRXoiLzPrIePXJHla0ek6E9", _PAGE),
    drive_source("hint", "celeba", "CelebA", "faces (CelebA)", "1oWuRmL3ye-ucHkUfbSqh_2NkzlYbKC29", _PAGE),
    drive_source("hint", "dunhuang", "Dunhuang", "murals (Dunhuang cave paintings)",
                 "14bRa6_12MZf1Qsu3Jv6CJEFwWO0WX5qF", _PAGE),
)
