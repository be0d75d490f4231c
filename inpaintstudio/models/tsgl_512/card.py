"""TSGL in a LaMa FFC generator at 512×512 (:mod:`inpaintstudio.models.tsgl_512.network`). Torch-free; the paper,
licence and Baidu share are TSGL's (:mod:`inpaintstudio.models.tsgl.card`)."""

from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile
from inpaintstudio.models.tsgl.card import LICENCE, PAPER, WEIGHT_SOURCE, baidu_source
from inpaintstudio.weights.sources import SCENES, Source

CARDS: list[ModelCard] = [
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
        module="inpaintstudio.models.tsgl_512.network",
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

SOURCES: tuple[Source, ...] = (
    baidu_source("tsgl_512", "places2", "Places365-Standard", SCENES + " at 512×512", "Places2 (TSGL-LaMa, 512)"),
)
