"""TSGL's two cards: 256 (MEDFE host, :mod:`inpaintstudio.models.tsgl`) and 512 (LaMa host,
:mod:`inpaintstudio.models.tsgl_lama`). Torch-free."""

from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile

PAPER = ("Liu, Wang, Qian, Rui, Wang. Thinking inside the Convolution for Image Inpainting: Reconstructing "
         "Texture via Structure under Global and Local Side. arXiv 2602.03013")
WEIGHT_SOURCE = ("Baidu Netdisk https://pan.baidu.com/s/1Qm1AGFHcWuE09NvusZfonA (extraction code feqj), linked from "
                 "github.com/htyjers/ConvInpaint-TSGL; folders PSV, CelebA, Places2 (256) and Places2 (512, LaMa "
                 "variant); file names inside the share are not documented")
LICENCE = ("repository Apache-2.0; its SPADE files carry NVIDIA's CC BY-NC-SA 4.0 (non-commercial); the weights are "
           "published without a stated licence. This re-implementation copies no code.")

CARDS: list[ModelCard] = [
    ModelCard(
        name="tsgl",
        family="tsgl",
        title="TSGL (MEDFE host, 256×256)",
        paper=PAPER,
        paper_url="https://arxiv.org/abs/2602.03013",
        code_url="https://github.com/htyjers/ConvInpaint-TSGL",
        licence=LICENCE,
        working_size=256,
        tile_size=256,
        tile_overlap=64,
        context_margin=64,
        input=InputConvention(value_range=(-1.0, 1.0), hole_fill=0.0, mask_hole_value=0, fixed_size=256,
                              min_size=256),
        weights=(WeightFile(filename="tsgl.safetensors", source=WEIGHT_SOURCE, official_filename="G_<n>.pth"),),
        cpu_seconds=2.9,
        module="inpaintstudio.models.tsgl",
        notes=(
            "Mask 1 = KNOWN (opposite to the other models). Holes filled with 0 (mid-grey), as I·M does. "
            "INFERRED: at inference grey/Canny/RTV are computed from the hole-filled image (the official test "
            "computes them from the complete ground truth); Canny is restricted to known pixels (scikit-image "
            "mask) so the fill draws no edges; RTV reproduces MATLAB's PCG(0.1)+michol solve to ≤1 grey level. "
            "Which checkpoint revision (last-stage depth 6 vs 2) is published is not documented: depth 6 assumed."
        ),
    ),
    ModelCard(
        name="tsgl_512",
        family="tsgl",
        title="TSGL (LaMa host, 512×512)",
        paper=PAPER,
        paper_url="https://arxiv.org/abs/2602.03013",
        code_url="https://github.com/htyjers/ConvInpaint-TSGL",
        licence=LICENCE,
        working_size=512,
        tile_size=512,
        tile_overlap=128,
        context_margin=128,
        input=InputConvention(value_range=(0.0, 1.0), hole_fill=0.0, mask_hole_value=1, fixed_size=512,
                              min_size=512),
        weights=(WeightFile(filename="tsgl_512.safetensors", source=WEIGHT_SOURCE, official_filename="G_<n>.pth"),),
        cpu_seconds=8.6,
        module="inpaintstudio.models.tsgl_lama",
        config_class="LamaConfig",
        notes=(
            "Mask 1 = HOLE (LaMa convention of this variant). Image in [0, 1] as the released test script feeds it: "
            "its loader does not normalise, and the [−1, 1] normalisation of the training loader arrived on "
            "2024-10-20, after the Places2-512 weights (2024-10-11); LamaConfig(image_range='signed') serves "
            "checkpoints trained after that change. The tanh output is read as [0, 1] pixels, as test.py writes it. "
            "Grey/Canny come from the hole-filled image, Canny restricted to known pixels (INFERRED: the test "
            "computes them from the complete image). Parity with the authors' code: fixture tsgl_512."
        ),
    ),
]
