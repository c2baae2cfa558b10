"""Why `timeseries/gan` has no private fit (not a test): the DP-SGD cost of a recurrent
network with Opacus, against the issue's bound of 3x the plain fit.

Opacus has no per-row gradients for torch's fused `nn.GRU`; its own `DPGRU` unrolls the
recurrence in Python so that each step's linear layers can be hooked. This times one
optimiser step of a TimeGAN-sized network (2-layer GRU of width 24 and a linear head,
sequences of 52 steps with 4 features, batches of 32: the World Bank fertility panel as
bench/dp_timeseries.py runs it) four ways, in one run, on one torch thread:
plain `nn.GRU`, plain `DPGRU`, and `DPGRU` under DP-SGD with Opacus' per-row-gradient
hooks and with its ghost clipping. TimeGAN trains four such networks on real data
(embedder, recovery, supervisor, discriminator), so its private fit costs at least the
per-network ratio.

    python bench/dp_recurrent.py [--steps 40]

Prints CPU ms per step and the ratio to plain `nn.GRU`; writes bench/results/dp_recurrent.json."""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

OUT = Path(__file__).resolve().parent / "results" / "dp_recurrent.json"
BATCH, STEPS_LONG, FEATURES, HIDDEN, LAYERS = 32, 52, 4, 24, 2


class Net(nn.Module):
    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn, self.proj = rnn, nn.Linear(HIDDEN, FEATURES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((self.proj(self.rnn(x)[0]) - x) ** 2).mean((1, 2))  # one loss per sequence


class PerRow(nn.Module):
    """Ghost clipping's criterion: the network already returns one loss per row."""

    reduction = "mean"

    def forward(self, per_row: torch.Tensor, _target: object) -> torch.Tensor:
        return per_row if self.reduction == "none" else per_row.mean()


def ms_per_step(rnn: nn.Module, data: torch.Tensor, mode: str | None) -> float:
    from opacus import PrivacyEngine

    net = Net(rnn)
    opt = torch.optim.Adam(net.parameters())
    loader = DataLoader(TensorDataset(data), batch_size=BATCH)
    criterion = lambda per_row, _: per_row.mean()  # noqa: E731
    if mode is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine = PrivacyEngine(accountant="prv")
            extra = {"criterion": PerRow()} if mode == "ghost" else {}
            made = engine.make_private(module=net, optimizer=opt, data_loader=loader, noise_multiplier=1.0,
                                       max_grad_norm=1.0, poisson_sampling=True, grad_sample_mode=mode, **extra)
        net, opt, loader = made[0], made[1], made[-1]
        criterion = made[2] if mode == "ghost" else criterion
    start, steps = time.process_time(), 0
    with warnings.catch_warnings():  # "Full backward hook is firing ...": Opacus' hooks on an input without grad
        warnings.simplefilter("ignore", UserWarning)
        for (batch,) in loader:
            opt.zero_grad(set_to_none=True)
            criterion(net(batch), None).backward()
            opt.step()
            steps += 1
    return 1000 * (time.process_time() - start) / steps


def main() -> None:
    from opacus.layers import DPGRU

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = torch.randn(BATCH * args.steps, STEPS_LONG, FEATURES)
    gru = lambda kind: kind(FEATURES, HIDDEN, LAYERS, batch_first=True)  # noqa: E731
    rows = {
        "plain nn.GRU": ms_per_step(gru(nn.GRU), data, None),
        "plain DPGRU": ms_per_step(gru(DPGRU), data, None),
        "DP-SGD DPGRU, per-row hooks": ms_per_step(gru(DPGRU), data, "hooks"),
        "DP-SGD DPGRU, ghost clipping": ms_per_step(gru(DPGRU), data, "ghost"),
    }
    base = rows["plain nn.GRU"]
    result = [{"setting": k, "cpu_ms_per_step": round(v, 2), "ratio_to_plain": round(v / base, 2)} for k, v in rows.items()]
    print(f"{'setting':32} {'CPU ms/step':>12} {'x plain':>8}")
    for r in result:
        print(f"{r['setting']:32} {r['cpu_ms_per_step']:12.1f} {r['ratio_to_plain']:8.2f}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"steps": args.steps, "batch": BATCH, "length": STEPS_LONG, "hidden": HIDDEN,
                               "layers": LAYERS, "rows": result}, indent=2))


if __name__ == "__main__":
    main()
