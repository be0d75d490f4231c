"""INCLG's card (torch-free; the network is :mod:`inpaintstudio.models.inclg.network`)."""

from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile
from inpaintstudio.weights.sources import Source, drive_source

CARDS: list[ModelCard] = [
    ModelCard(
        name="inclg",
        family="inclg",
        title="INCLG (non-cleft lip generation, image + 68 landmarks)",
        kind="deep",
        paper=(
            "Chen et al., A Feasibility Study on Image Inpainting for Non-cleft Lip Generation from Patients "
            "with Cleft Lip, IEEE BHI 2022; INCLG, Software Impacts 17 (2023) 100517"
        ),
        paper_url="https://arxiv.org/abs/2208.01149",
        code_url="https://github.com/ChrisChen1023/INCLG",
        licence="MIT (the repository's License file); CelebA weights: CelebA's non-commercial research terms",
        working_size=256,
        tile_size=256,
        tile_overlap=64,
        context_margin=64,
        input=InputConvention(
            value_range=(0.0, 1.0), hole_fill=1.0, mask_hole_value=1, pad_multiple=1, pad_mode="reflect",
            fixed_size=256, min_size=256,
        ),
        weights=(
            WeightFile(
                filename="inclg.safetensors",
                sha256=None,
                source=(
                    "Google Drive folder linked from the INCLG and NCLG-MT READMEs: "
                    "https://drive.google.com/drive/folders/1H9FZ-jJUkYBDcNASX8kBnmipgGgv_y7t "
                    "(CelebA checkpoint; also packaged on CodeOcean)"
                ),
                official_filename="InpaintingModel_gen.pth",
            ),
        ),
        capabilities=frozenset({"landmarks"}),
        cpu_seconds=2.0,
        module="inpaintstudio.models.inclg.network",
        notes=(
            "Reference behaviour = released code (white hole fill, replicated 68-channel landmark map, two "
            "down-samplings). Runs only at exactly 256×256. Trained on CelebA aligned crops (centre square, "
            "resized to 256); clinical use expects a face crop aligned the same way (inpaintstudio.face.clinic). "
            "INFERRED: which code revision (with or without F2 fusion) "
            "trained the Drive weights is unknown (switch landmark_fusion)."
        ),
    ),
]

# where the authors publish the weights, one entry per variant (the first is the default)
SOURCES: tuple[Source, ...] = (
    drive_source("inclg", "celeba", "CelebA", "faces, with 68 predicted landmarks", "1H9FZ-jJUkYBDcNASX8kBnmipgGgv_y7t",
                 "https://github.com/ChrisChen1023/INCLG"),
)
