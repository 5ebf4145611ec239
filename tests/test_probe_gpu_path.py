"""The GPU path of the probe runner, reached on CPU with the device forced.

No test here has run on a GPU (these machines have none): each CUDA-only decision is a small function, and
these tests call it with a CUDA device object (which torch builds without CUDA) to check what the GPU path
would do: bf16 autocast, ``torch.compile``, fused AdamW, one GPU per grid worker, one GPU per Ray task, and
local Hugging Face checkpoints loaded without a download.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from bayes_dcpt.probe.configs import ProbeConfigError, TrainSettings  # noqa: E402
from bayes_dcpt.probe.grid_workers import ray_resources, worker_gpu  # noqa: E402
from bayes_dcpt.probe.runtime import (  # noqa: E402
    Runtime,
    _cuda_device,
    autocast,
    autocast_enabled,
    compile_wanted,
    fused_adamw,
    make_runtime,
)

CUDA, CPU = torch.device("cuda:1"), torch.device("cpu")


def test_bf16_autocast_on_cuda_only():
    assert autocast_enabled(CUDA) and not autocast_enabled(CPU)
    ctx = autocast(Runtime(CUDA, autocast=True))
    assert ctx.device == "cuda" and ctx.fast_dtype == torch.bfloat16
    cpu = autocast(Runtime(CPU, autocast=autocast_enabled(CPU)))
    assert cpu.device == "cpu" and not cpu._enabled  # fp32 on CPU: the losses as measured


def test_compile_and_fused_adamw_on_cuda_unless_told():
    assert compile_wanted(None, CUDA) and not compile_wanted(None, CPU)
    assert compile_wanted(True, CPU) and not compile_wanted(False, CUDA)
    assert fused_adamw(CUDA) and not fused_adamw(CPU)


def test_device_choice():
    assert _cuda_device(TrainSettings(device="cuda:1")) == CUDA
    assert _cuda_device(TrainSettings(device="auto")) == torch.device("cuda")
    if not torch.cuda.is_available():
        assert make_runtime(TrainSettings(device="auto")).device == CPU
        with pytest.raises(ProbeConfigError, match="CUDA is not available"):
            make_runtime(TrainSettings(device="cuda"))


def test_grid_workers_spread_over_gpus():
    assert [worker_gpu(i, 2) for i in range(5)] == ["0", "1", "0", "1", "0"]
    assert worker_gpu(3, 0) is None  # no GPU: the worker trains on CPU
    assert ray_resources(4, 3) == {"num_cpus": 3, "num_gpus": 1}
    assert ray_resources(0, 2) == {"num_cpus": 2, "num_gpus": 0}


def test_local_hf_checkpoint_and_tokenizer_load_offline(tmp_path, monkeypatch):
    """A local Hugging Face directory (model + tokenizer) loads with the hub switched off: no download."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from bayes_dcpt.probe.networks import HFTokenizer, load_base

    vocab = {"<eos>": 0, **{c: i + 1 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz ")}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<eos>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>").save_pretrained(tmp_path)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load_base(tmp_path)
    assert isinstance(loaded.tokenizer, HFTokenizer) and loaded.tokenizer.vocab_size == len(vocab)
    assert loaded.tokenizer.encode(b"ab c").tolist() == [1, 2, 27, 3]
