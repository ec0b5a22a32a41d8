"""Fine-tuning a CrossEncoder on (query, passage, label) pairs, budgeted by steps and seconds.

The recipe of `../shared/models/README.md`: binary cross-entropy on the relevance logit with the
positives up-weighted to balance the hard negatives, AdamW without decay on biases/LayerNorm,
linear warm-up then linear decay, grad-norm clip 1.0, one pass over the shuffled pairs at most.
A plain PyTorch loop over the model's own tokenizer: sentence-transformers' trainer needs
`accelerate`, which this stack does not install.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


@dataclass(frozen=True)
class TrainingPair:
    query: str
    passage: str
    label: float  # 1.0 relevant, 0.0 a hard negative


class TrainingBudget(BaseModel):
    """What one fine-tuning may spend: it stops at whichever of the limits comes first."""

    max_steps: int = Field(default=500, ge=1)
    max_seconds: float = Field(default=1800.0, gt=0)
    batch_size: int = Field(default=16, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 42


@dataclass(frozen=True)
class TrainingResult:
    steps: int
    pairs_seen: int
    seconds: float
    final_loss: float
    stopped_by: str  # "data", "max_steps" or "max_seconds"

    @property
    def pairs_per_second(self) -> float:
        return self.pairs_seen / self.seconds if self.seconds > 0 else 0.0


def fine_tune_cross_encoder(
    base_location: str,
    pairs: Sequence[TrainingPair],
    budget: TrainingBudget,
    max_length: int,
    out_dir: Path,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
) -> TrainingResult:
    """Train a copy of the CrossEncoder at `base_location` on `pairs` and save it to `out_dir`."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import get_linear_schedule_with_warmup

    if not pairs:
        raise ValueError("no training pairs: nothing to fine-tune on")
    torch.manual_seed(budget.seed)
    model = CrossEncoder(base_location, device=device, max_length=max_length)
    network, tokenizer = model.model, model.tokenizer
    order = list(pairs)
    random.Random(budget.seed).shuffle(order)
    batches = [order[i : i + budget.batch_size] for i in range(0, len(order), budget.batch_size)]
    total_steps = min(len(batches), budget.max_steps)
    no_decay = ("bias", "LayerNorm.weight")
    groups: list[dict[str, Any]] = [
        {"params": [p for n, p in network.named_parameters() if not any(k in n for k in no_decay)]},
        {
            "params": [p for n, p in network.named_parameters() if any(k in n for k in no_decay)],
            "weight_decay": 0.0,
        },
    ]
    optimizer = torch.optim.AdamW(groups, lr=budget.learning_rate, weight_decay=0.01)
    warmup = int(budget.warmup_ratio * total_steps)
    schedule = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)  # type: ignore[no-untyped-call]
    positives = sum(1 for p in order if p.label > 0.5)
    pos_weight = torch.tensor([max(1.0, (len(order) - positives) / max(positives, 1))], device=network.device)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    network.train()
    started, losses, seen, stopped_by = time.perf_counter(), [], 0, "data"
    for step, batch in enumerate(batches[:total_steps], start=1):
        features = tokenizer(
            [p.query for p in batch],
            [p.passage for p in batch],
            padding=True,
            truncation="longest_first",
            max_length=max_length,
            return_tensors="pt",
        ).to(network.device)
        labels = torch.tensor([p.label for p in batch], dtype=torch.float32, device=network.device)
        loss = loss_fn(network(**features).logits.view(-1), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
        seen += len(batch)
        elapsed = time.perf_counter() - started
        if log is not None and (step % 20 == 0 or step == total_steps):
            recent = losses[-20:]
            log(
                f"step {step}/{total_steps}: loss {sum(recent) / len(recent):.4f}, "
                f"{seen / elapsed:.1f} pairs/s"
            )
        if elapsed >= budget.max_seconds and step < total_steps:
            stopped_by = "max_seconds"
            break
    else:
        if total_steps < len(batches):
            stopped_by = "max_steps"
    network.eval()
    seconds = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(out_dir))
    tail = losses[-20:]
    return TrainingResult(len(losses), seen, round(seconds, 2), round(sum(tail) / len(tail), 4), stopped_by)
