"""SEM-Net's card (torch-free; the network is :mod:`inpaintstudio.models.sem_net.network`)."""

from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile
from inpaintstudio.weights.sources import FACES, SCENES, Source, drive_source

SIZE_MULTIPLE = 16  # three pixel-unshuffles, then the SEFN 2x2 average pool at the deepest level

CARDS: list[ModelCard] = [
    ModelCard(
        name="sem_net",
        family="sem_net",
        title="SEM-Net (Spatially-Enhanced Mamba Network)",
        kind="deep",
        paper=(
            "S. Chen, H. Zhang, A. Atapour-Abarghouei, H. P. H. Shum, 'SEM-Net: Efficient Pixel Modelling for "
            "Image Inpainting with Spatially Enhanced SSM', WACV 2025"
        ),
        paper_url="https://arxiv.org/abs/2411.06318",
        code_url="https://github.com/ChrisChen1023/SEM-Net",
        licence=(
            "MIT (the repository's LICENSE file, added 2024-10-30); weights: the training sets' terms "
            "(CelebA-HQ, Places2)"
        ),
        working_size=256,
        tile_size=256,
        tile_overlap=64,
        context_margin=64,
        input=InputConvention(
            value_range=(0.0, 1.0), hole_fill=1.0, mask_hole_value=1, pad_multiple=SIZE_MULTIPLE, pad_mode="reflect",
            min_size=SIZE_MULTIPLE,
        ),
        weights=(
            WeightFile(
                filename="sem_net.safetensors",
                source=(
                    "Google Drive folders linked from the README of https://github.com/ChrisChen1023/SEM-Net "
                    "(one per dataset: CelebA-HQ, Places2), each holding InpaintingModel_gen.pth "
                    "({'iteration', 'generator'}), InpaintingModel_dis.pth and config.yml"
                ),
                official_filename="InpaintingModel_gen.pth",
            ),
        ),
        cpu_seconds=11.1,
        module="inpaintstudio.models.sem_net.network",
        notes=(
            "Trained at 256×256 (CelebA-HQ or Places2 checkpoints); fully convolutional + scans, runs at any H, W "
            "multiple of 16 (paper shows 2K inference). Output is the full image; the pipeline composites. "
            "Paper reports 163 M parameters; the released definition registers 138 099 744, of which 81 438 048 "
            "are used in forward (the rest are registered-but-unused modules kept for strict loading). "
            "[INFERRED] The Drive files follow the code's names. The official loader is strict=False: import "
            "drops and names any key the definition does not register."
        ),
    ),
]

# where the authors publish the weights, one entry per variant (the first is the default)
_PAGE = "https://github.com/ChrisChen1023/SEM-Net"
SOURCES: tuple[Source, ...] = (
    drive_source("sem_net", "places2", "Places2", SCENES, "1sgJRu-Vf6u6taZY-RpY8cFXRAH09i4fu", _PAGE),
    drive_source("sem_net", "celebahq", "CelebA-HQ", FACES, "1L-Tt3mTgbJ_8Ki8jQIZE6xmddhHNl3YN", _PAGE),
)
