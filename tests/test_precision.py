"""The bf16 autocast inference path (``InpaintOptions(precision="bf16")``) against float32 on the parity fixtures,
and the CPU engine's memory retention."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from inpaintstudio import weights
from inpaintstudio.core import engines, loading, memory, parity, pipeline
from tests.conftest import REPO

FIXTURES = Path(REPO) / "tests" / "fixtures" / "parity"
# bf16 keeps 8 bits of mantissa: measured on these fixtures (CPU autocast) the largest output difference to the
# float32 reference is 3.2e-3 (SEM-Net), 5.2e-3 (M×T), 2.0e-2 (HINT), the mean 0.7e-3 to 1.3e-3 (outputs in [0, 1]).
BF16_MAX_ERROR = 0.03
BF16_MEAN_ERROR = 0.002


def _fixture_net(name: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    folder = FIXTURES / name
    module = loading.model_module(name)
    net = module.build(module.config_from_fixture(parity.read_fixture_config(folder)))
    tensors, _ = weights.read_checkpoint(folder / "weights.safetensors")
    weights.load_strict(net, tensors, name=name)
    inputs = load_file(str(folder / "inputs.safetensors"))
    image, mask = inputs["image"], inputs["mask"]
    if name in ("sem_net", "mxt"):  # their parity wrappers fill the holes before the network
        image = image * (1 - mask) + mask
    return net.eval(), image, mask, load_file(str(folder / "outputs.safetensors"))["output_raw"]


def _bf16_errors(name: str, device: str) -> tuple[float, float, torch.dtype]:
    net, image, mask, expected = _fixture_net(name)
    net = net.to(device)
    with torch.inference_mode(), engines.autocast(device, "bf16"):
        out = net(image.to(device), mask.to(device))
    diff = (out.float().cpu() - expected).abs()
    return diff.max().item(), diff.mean().item(), out.dtype


@pytest.mark.parametrize("name", ["sem_net", "mxt", "hint"])
def test_bf16_autocast_stays_close_to_float32_on_the_cpu(name) -> None:
    worst, mean, dtype = _bf16_errors(name, "cpu")
    assert dtype == torch.bfloat16  # the path really ran in bf16 (the head convolution's output)
    assert worst < BF16_MAX_ERROR and mean < BF16_MEAN_ERROR


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["sem_net", "mxt", "hint"])
def test_bf16_autocast_stays_close_to_float32_on_cuda(name) -> None:
    worst, mean, _ = _bf16_errors(name, "cuda")
    assert worst < BF16_MAX_ERROR and mean < BF16_MEAN_ERROR


def test_fp32_autocast_context_is_disabled() -> None:
    with engines.autocast("cpu", "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with engines.autocast("cpu", "bf16"):
        assert torch.is_autocast_enabled("cpu")


def test_engine_runs_in_the_precision_asked(monkeypatch) -> None:
    card = loading.resolve_model("hint").card
    seen: list[bool] = []

    def predict(net: torch.nn.Module, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        seen.append(torch.is_autocast_enabled("cpu"))
        return {"image": image}

    image, hole = np.zeros((16, 16, 3), np.float32), np.zeros((16, 16), bool)
    for precision, expected in (("fp32", False), ("bf16", True)):
        engines.TorchEngine(card, torch.nn.Identity(), "cpu", predict, precision=precision).run(image, hole)
        assert seen[-1] is expected
    with pytest.raises(ValueError, match="precision"):
        engines.TorchEngine(card, torch.nn.Identity(), "cpu", predict, precision="fp16")


def test_unknown_precision_is_refused_before_any_work() -> None:
    card = loading.resolve_model("hint").card
    with pytest.raises(pipeline.OptionError, match="precision"):
        pipeline.check_options({"precision": "fp16"}, card)
    assert pipeline.check_options({"precision": "bf16"}, card).precision == "bf16"


def test_cpu_engine_keeps_freed_memory_for_reuse() -> None:
    assert memory.retain_freed_memory() is memory.retain_freed_memory()  # once per process, same answer
    assert memory.retain_freed_memory()  # glibc (the test machines run Linux with glibc)


def test_the_precision_option_reaches_the_engine_from_the_command_line(tmp_path) -> None:
    """`inpaint --precision bf16` builds the deep engine under bf16 autocast; a wrong value is refused (exit 2)."""
    import numpy as np
    from PIL import Image

    from inpaintstudio.cli import main
    from inpaintstudio.core import pipeline

    photo = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 8:20] = 255
    Image.fromarray(photo).save(tmp_path / "p.png")
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert main(["inpaint", str(tmp_path / "p.png"), str(tmp_path / "m.png"), "-m", "opencv_telea",
                 "--precision", "bf16", "-o", str(tmp_path / "o.png")]) == 0  # classical engines ignore it
    assert main(["inpaint", str(tmp_path / "p.png"), str(tmp_path / "m.png"), "--precision", "fp16", "-o",
                 str(tmp_path / "x.png")]) == 2
    assert pipeline.InpaintOptions.from_dict({"precision": "bf16"}).precision == "bf16"
