"""tvault.resume: 2 epochs, log, resume in a fresh process state, 1 more == 3 uninterrupted epochs, bit for bit."""

from __future__ import annotations

import pytest
import torch
from conftest import import_fresh

import tvault_git as tvault


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(64, 4, generator=g), torch.randint(0, 2, (64,), generator=g)


def _setup(model_mod, sched_kind: str):
    torch.manual_seed(0)
    m = model_mod.Net()
    opt = torch.optim.AdamW(
        [
            {"params": [m.fc1.weight, m.fc1.bias], "lr": 3e-3},
            {"params": m.fc2.parameters(), "lr": 1e-2, "weight_decay": 0.0},
        ],
        amsgrad=True,
    )
    if sched_kind == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5, eta_min=1e-4)
    else:  # holds inf in its state (best, mode_worse), which JSON cannot say
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    return m, opt, sched


def _epoch(epoch: int, m, opt, sched) -> float:
    x, y = _data()
    order = torch.randperm(64, generator=torch.Generator().manual_seed(100 + epoch))  # data order seeded per epoch
    total = 0.0
    for i in range(0, 64, 16):
        idx = order[i : i + 16]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(m(x[idx]), y[idx])
        loss.backward()
        opt.step()
        total += loss.item()
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        sched.step(1.0 + epoch)  # worsening: the lr drops, num_bad_epochs counts
    else:
        sched.step()
    return total


@pytest.mark.parametrize("sched_kind", ["cosine", "plateau"])
def test_resume_is_bit_exact(repo, sched_kind):
    mod = import_fresh("model")
    m, opt, sched = _setup(mod, sched_kind)
    for ep in range(3):
        _epoch(ep, m, opt, sched)
    straight = {k: v.clone() for k, v in m.state_dict().items()}
    straight_lr = [g["lr"] for g in opt.param_groups]

    m, opt, sched = _setup(mod, sched_kind)
    for ep in range(2):
        _epoch(ep, m, opt, sched)
    e = tvault.log_all(m, optimizer=opt, scheduler=sched, name="run", save_optimizer_state=True)

    # A new process would rebuild everything from scratch with another init: do the same.
    torch.manual_seed(12345)
    m2 = mod.Net()
    opt2 = torch.optim.AdamW(
        [
            {"params": [m2.fc1.weight, m2.fc1.bias], "lr": 3e-3},
            {"params": m2.fc2.parameters(), "lr": 1e-2, "weight_decay": 0.0},
        ],
        amsgrad=True,
    )
    sched2 = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=5, eta_min=1e-4)
        if sched_kind == "cosine"
        else torch.optim.lr_scheduler.ReduceLROnPlateau(opt2, patience=0, factor=0.5)
    )
    got = tvault.resume(m2, opt2, sched2, "run@latest")
    assert got.id == e.id
    assert sched2.state_dict() == sched.state_dict()
    _epoch(2, m2, opt2, sched2)
    for k, v in straight.items():
        assert torch.equal(m2.state_dict()[k], v), k  # bit-exact, not close
    assert [g["lr"] for g in opt2.param_groups] == straight_lr


def test_resume_refuses_before_changing_anything(repo):
    mod = import_fresh("model")
    m, opt, sched = _setup(mod, "cosine")
    _epoch(0, m, opt, sched)
    e = tvault.log_all(m, optimizer=opt, scheduler=sched)  # no optimizer state
    torch.manual_seed(7)
    m2 = mod.Net()
    before = {k: v.clone() for k, v in m2.state_dict().items()}
    opt2 = torch.optim.AdamW(m2.parameters())
    with pytest.raises(tvault.InvalidInput, match="save_optimizer_state=True"):
        tvault.resume(m2, opt2, None, e.id)
    e2 = tvault.log_all(m, optimizer=opt, save_optimizer_state=True)  # no scheduler
    with pytest.raises(tvault.InvalidInput, match="no scheduler state"):
        tvault.resume(m2, opt2, torch.optim.lr_scheduler.StepLR(opt2, 1), e2.id)
    with pytest.raises(tvault.InvalidInput, match="not torch.optim.sgd.SGD"):
        tvault.resume(m2, torch.optim.SGD(m2.parameters(), lr=0.1), None, e2.id)
    assert all(torch.equal(m2.state_dict()[k], v) for k, v in before.items())
    tvault.resume(m2, None, None, e2.id)  # weights only
    assert all(torch.equal(m2.state_dict()[k], v) for k, v in m.state_dict().items())
