"""CSFC's card (torch-free; the network is :mod:`inpaintstudio.models.csfc.network`)."""

from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile

DEFAULT_PARAMETER_COUNT = 26_829_141  # the test suite checks it against the built network
INPUT_SIZE = 128  # csfc.Config().input_size
PAD_MULTIPLE = 64  # csfc.Config().pad_multiple

_NOTES = (
    f"Default network: {DEFAULT_PARAMETER_COUNT:,} parameters. No official code or weights exist; the architecture "
    "is InpaintStudio's reconstruction (docs/models/csfc.md), following PSR-Net where the paper is silent. "
    "INFERRED/OPEN: PSR-Net basic-block U-Net (channels 64-512, kernels 7/7/5/3, shared down/up layers; the "
    "paper's 'two paths' of a block read as its down and up paths, no parallel branch), depths (2,3,4,5) at "
    "128x128, PSR-form partial convolutions (no input*mask, renormalise k*k*cin/count, multi-channel mask; no "
    "renormalisation at down levels >=3 and up layers u2-u5, as PSR's mul=False), symmetric padding instead of TF "
    "'same', Keras BN/init defaults, CCSA at level 2 with f_lo = previous block's level-2 feature after its own "
    "CCSA, cosine similarity normalising both patches, Eq. 4 as a 3x3 mean over the query's neighbourhood "
    "(candidate fixed), softmax scale 10, lambda blend (init 0.5, clamped), per-pixel reconstruction, SCA "
    "(Eqs. 1-2) on the input hole brought to level 2 by an 8x8 max-pool (the block's own level-2 mask is closed "
    "by then; raster order, sequential), dilations 1/2/4/8 with MLP 256-32-1024, fusion [F, f_hi], separate CCSA "
    "per link, SRA design (OPEN), head on last two blocks with gated 1x1 and bottleneck, working size 128, range "
    "[0,1], mask 1 = known (holes are zeroed by the network itself). Training recipe: configs/train/csfc.yaml "
    "(paper: Adam 1e-4, betas 0.9/0.999, 1000 epochs x 500 iterations, 128x128; PSR: batch 6)."
)

CARDS: list[ModelCard] = [
    ModelCard(
        name="csfc",
        family="csfc",
        title="CSFC (cross-scale coherent semantic attention + semantic residual attention)",
        kind="deep",
        paper="Cross-scale space semantic-feature-coherent image inpainting, Mobile Information Systems 2022, "
        "article 5165962 (title and authors not recovered)",
        paper_url="https://www.hindawi.com/journals/misy/2022/5165962/",
        code_url="",
        licence="no official code or weights; implementation is InpaintStudio's own (project licence)",
        working_size=INPUT_SIZE,
        tile_size=INPUT_SIZE,
        tile_overlap=32,
        context_margin=32,
        input=InputConvention(
            value_range=(0.0, 1.0),
            hole_fill=0.0,
            mask_hole_value=0,
            pad_multiple=PAD_MULTIPLE,
            pad_mode="reflect",
            fixed_size=None,
            min_size=PAD_MULTIPLE,
        ),
        weights=(
            WeightFile(
                filename="csfc.safetensors",
                sha256=None,
                source="No official checkpoint is published (the paper released no code or weights); "
                "csfc.safetensors comes from training with InpaintStudio's trainer (inpaintstudio.training).",
                official_filename=None,
            ),
        ),
        cpu_seconds=0.9,
        module="inpaintstudio.models.csfc.network",
        notes=_NOTES,
    )
]

# no published weights: what to do instead
UNPUBLISHED = (
    "CSFC's authors published no code or weights: train it with the paper's recipe, `python -m inpaintstudio "
    "train --model csfc --config configs/train/csfc.yaml` (edit its data paths); the trainer writes "
    "OUTPUT/csfc.safetensors, which `python -m inpaintstudio weights import --model csfc --variant NAME FILE` "
    "registers as csfc:NAME"
)
