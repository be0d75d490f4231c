"""LaMa's card (torch-free; the network is :mod:`inpaintstudio.models.lama.network`)."""

from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile
from inpaintstudio.weights.sources import SCENES, Location, Source

_BIG_LAMA_ZIP = "https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip"
_BIG_LAMA_PT = "https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt"

CARDS: list[ModelCard] = [
    ModelCard(
        name="lama",
        family="lama",
        title="LaMa (Big-LaMa, Fourier convolutions)",
        paper=("Suvorov, Logacheva, Mashikhin, Remizova, Ashukha, Silvestrov, Kong, Goka, Park, Lempitsky. "
               "Resolution-robust Large Mask Inpainting with Fourier Convolutions. WACV 2022"),
        paper_url="https://arxiv.org/abs/2109.07161",
        code_url="https://github.com/advimman/lama",
        licence="Apache-2.0 (code and released weights); re-implemented here, no code copied",
        working_size=512,
        tile_size=2048,
        tile_overlap=128,
        context_margin=128,
        input=InputConvention(value_range=(0.0, 1.0), hole_fill=0.0, mask_hole_value=1, pad_multiple=8,
                              pad_mode="symmetric", min_size=16),
        weights=(WeightFile(
            filename="lama.safetensors",
            source=(f"IOPaint's TorchScript {_BIG_LAMA_PT} (MD5 e3aa4aaa15225a33ec84f9f4bc47e500), or "
                    f"big-lama/models/best.ckpt inside {_BIG_LAMA_ZIP}"),
            official_filename="big-lama.pt",
        ),),
        module="inpaintstudio.models.lama.network",
        notes=(
            "Image [0, 1] RGB, mask 1 = hole, holes zeroed, padded bottom/right to a multiple of 8 with numpy "
            "'symmetric' (the official predict path). Fully convolutional with an image-wide Fourier receptive "
            "field: trained at 256², it runs on regions up to 2048² at full resolution (peak memory measured on the "
            "CPU: 1.6 GB at 1024², 4.1 GB at 2048²); larger regions go through the pipeline's tile/resize "
            "strategies. Both public checkpoint forms import: best.ckpt (Lightning) and big-lama.pt (TorchScript, "
            "read with torch.jit.load, never executed)."
        ),
    ),
]

# where the weights are published: the first location is tried first
SOURCES: tuple[Source, ...] = (
    Source(
        "lama", "places2", "Places-Challenge", SCENES + "; large masks",
        (
            Location("url", "https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt",
                     pick=("big-lama.pt",), md5="e3aa4aaa15225a33ec84f9f4bc47e500",
                     note="TorchScript export of Big-LaMa published by IOPaint"),
            Location("url", "https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip",
                     pick=("best.ckpt",), member="big-lama/models/best.ckpt",
                     note="the authors' Lightning checkpoint, linked from the LaMa README"),
        ),
        page="https://github.com/advimman/lama", official_filename="big-lama.pt",
    ),
)
