"""MobileSAM's card and published weights (torch-free; the network is :mod:`inpaintstudio.models.mobile_sam.network`,
the Selector that uses it :mod:`inpaintstudio.selection`).

MobileSAM selects objects; it does not inpaint. ``task="select"`` keeps it out of the inpainting model
lists (``registry.list_cards()``, the studio's model picker); ``models`` lists it last, kind ``select``.
"""

from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile
from inpaintstudio.weights.sources import Location, Source

MOBILE_SAM_URL = "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt"
MOBILE_SAM_BYTES = 40_728_226
MOBILE_SAM_SHA256 = "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f"  # Hugging Face mirror
MOBILE_SAM_MD5 = "f3c0d8cda613564d499310dab6c812cd"  # stated by IOPaint

CARDS: list[ModelCard] = [
    ModelCard(
        name="mobile_sam",
        family="mobile_sam",
        title="MobileSAM (TinyViT-5M + Segment Anything decoder): select an object with a box or clicks",
        paper=("Zhang, Han, Qiao, Kim, Bae, Lee, Hong. Faster Segment Anything: Towards Lightweight SAM for "
               "Mobile Applications. arXiv 2306.14289, 2023"),
        paper_url="https://arxiv.org/abs/2306.14289",
        code_url="https://github.com/ChaoningZhang/MobileSAM",
        licence="Apache-2.0 (code and released weights); re-implemented here, no code copied",
        working_size=1024,
        tile_size=1024,
        input=InputConvention(value_range=(0.0, 255.0), hole_fill=None, fixed_size=1024),
        weights=(WeightFile(
            filename="mobile_sam.safetensors",
            source=f"{MOBILE_SAM_URL} ({MOBILE_SAM_BYTES} bytes, sha256 {MOBILE_SAM_SHA256})",
            official_filename="mobile_sam.pt",
        ),),
        module="inpaintstudio.models.mobile_sam.network",
        task="select",
        notes=("The photo's longest side is resized to 1024 (PIL bilinear), normalised and zero-padded to 1024²; "
               "the 64×64 image embedding is computed once per photo, then each box or click runs the prompt "
               "encoder and mask decoder only. Three masks are predicted; the one with the best predicted IoU is "
               "kept. See docs/models/mobile_sam.md."),
    ),
]

SOURCES: tuple[Source, ...] = (
    Source(
        "mobile_sam", "sa1b", "SA-1B (1 %, distilled from SAM ViT-H)", "selecting objects with a box or clicks",
        (Location("url", MOBILE_SAM_URL, pick=("mobile_sam.pt",), md5=MOBILE_SAM_MD5, sha256=MOBILE_SAM_SHA256,
                  size=MOBILE_SAM_BYTES,
                  note="the authors' release; sha256 as on the Hugging Face mirror, MD5 as IOPaint states it"),),
        page="https://github.com/ChaoningZhang/MobileSAM", official_filename="mobile_sam.pt",
    ),
)
