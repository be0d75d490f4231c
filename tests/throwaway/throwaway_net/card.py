"""The throwaway model's card and its one published variant (served by the test's local HTTP server)."""

import os

from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile
from inpaintstudio.weights.sources import Location, Source

CARDS = [
    ModelCard(
        name="throwaway_net",
        family="throwaway",
        title="Throwaway net",
        paper="none (a test model)",
        licence="MIT",
        working_size=32,
        tile_size=32,
        tile_overlap=8,
        context_margin=8,
        input=InputConvention(value_range=(0.0, 1.0), hole_fill=0.0, mask_hole_value=1, pad_multiple=4),
        weights=(WeightFile(filename="throwaway_net.safetensors", source="tests", official_filename="net.pth"),),
        module="inpaintstudio.models.throwaway_net.network",
    ),
]

SOURCES = (
    Source("throwaway_net", "demo", "test data", "the drop-in test",
           (Location("url", os.environ.get("THROWAWAY_URL", "http://127.0.0.1:9/net.pth"), pick=("net.pth",)),),
           official_filename="net.pth"),
)
