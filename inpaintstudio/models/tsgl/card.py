"""TSGL's card (256×256, MEDFE host, :mod:`inpaintstudio.models.tsgl.network`). Torch-free. The 512×512 LaMa-host
model shares this card's paper, licence and share (:mod:`inpaintstudio.models.tsgl_512.card`)."""

from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile
from inpaintstudio.weights.sources import FACES, SCENES, Location, Source

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
        module="inpaintstudio.models.tsgl.network",
        notes=(
            "Mask 1 = KNOWN (opposite to the other models). Holes filled with 0 (mid-grey), as I·M does. "
            "INFERRED: at inference grey/Canny/RTV are computed from the hole-filled image (the official test "
            "computes them from the complete ground truth); Canny is restricted to known pixels (scikit-image "
            "mask) so the fill draws no edges; RTV reproduces MATLAB's PCG(0.1)+michol solve to ≤1 grey level. "
            "Which checkpoint revision (last-stage depth 6 vs 2) is published is not documented: depth 6 assumed."
        ),
    ),

]

# where the authors publish the weights, one entry per variant (the first is the default)
_PAGE = "https://github.com/htyjers/ConvInpaint-TSGL"
_SHARE = "https://pan.baidu.com/s/1Qm1AGFHcWuE09NvusZfonA?pwd=feqj"


def baidu_source(model: str, variant: str, dataset: str, purpose: str, folder: str) -> Source:
    """A variant in the authors' Baidu Netdisk share, which a program cannot download: the user fetches it."""
    return Source(
        model, variant, dataset, purpose,
        (Location("manual", _SHARE, note="Baidu Netdisk, extraction code feqj"),),
        page=_PAGE, official_filename="G_<n>.pth",
        instructions=(
            f"TSGL's weights are on Baidu Netdisk, which a program cannot download from: open {_SHARE} "
            f"(extraction code feqj), take the generator G_<n>.pth from the {folder} folder, then run "
            f"`python -m inpaintstudio weights import --model {model} --variant {variant} PATH/G_<n>.pth`"
        ),
    )


SOURCES: tuple[Source, ...] = (
    baidu_source("tsgl", "places2", "Places2", SCENES, "Places2"),
    baidu_source("tsgl", "celeba", "CelebA", FACES, "CelebA"),
    baidu_source("tsgl", "psv", "Paris StreetView", "street façades", "PSV"),
)
