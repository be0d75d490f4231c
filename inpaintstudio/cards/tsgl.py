"""TSGL's two cards, 256 (MEDFE host) and 512 (LaMa host) (torch-free; the networks are in
:mod:`inpaintstudio.models.tsgl`)."""

from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile

_PAPER = ("Liu, Wang, Qian, Rui, Wang. Thinking inside the Convolution for Image Inpainting: Reconstructing "
          "Texture via Structure under Global and Local Side. arXiv 2602.03013")
_SOURCE = ("Baidu Netdisk https://pan.baidu.com/s/1Qm1AGFHcWuE09NvusZfonA (extraction code feqj), linked from "
           "github.com/htyjers/ConvInpaint-TSGL; folders PSV, CelebA, Places2 (256) and Places2 (512, LaMa variant); "
           "file names inside the share are not documented")

CARDS: list[ModelCard] = [
    ModelCard(
        name="tsgl",
        family="tsgl",
        title="TSGL (MEDFE host, 256×256)",
        paper=_PAPER,
        paper_url="https://arxiv.org/abs/2602.03013",
        code_url="https://github.com/htyjers/ConvInpaint-TSGL",
        licence="no licence stated in the repository",
        working_size=256,
        tile_size=256,
        tile_overlap=64,
        context_margin=64,
        input=InputConvention(value_range=(-1.0, 1.0), hole_fill=0.0, mask_hole_value=0, fixed_size=256,
                              min_size=256),
        weights=(WeightFile(filename="tsgl.safetensors", source=_SOURCE, official_filename="G_<n>.pth"),),
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
        paper=_PAPER,
        paper_url="https://arxiv.org/abs/2602.03013",
        code_url="https://github.com/htyjers/ConvInpaint-TSGL",
        licence="no licence stated in the repository",
        working_size=512,
        tile_size=512,
        tile_overlap=128,
        context_margin=128,
        input=InputConvention(value_range=(-1.0, 1.0), hole_fill=0.0, mask_hole_value=1, fixed_size=512,
                              min_size=512),
        weights=(WeightFile(filename="tsgl_512.safetensors", source=_SOURCE, official_filename="G_<n>.pth"),),
        module="inpaintstudio.models.tsgl",
        config_class="LamaConfig",
        notes=(
            "Mask 1 = HOLE (LaMa convention of this variant). OPEN in the code: the test loader feeds [0, 1] while "
            "training used [−1, 1]; [−1, 1] is used. Grey/Canny are computed from the true image (the test loader "
            "does not fold). No texture (RTV) input. No parity fixture exists for this variant: built from the "
            "spec only."
        ),
    ),
]
