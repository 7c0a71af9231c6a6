"""Optimizer and scheduler settings, and optional optimizer state, round-trip."""

from __future__ import annotations

import pytest
import torch
from conftest import import_fresh
from conftest import tvault as run

import tvault_git as tvault


def _trained(model_mod, steps=3):
    torch.manual_seed(0)
    m = model_mod.Net()
    opt = torch.optim.AdamW(
        [
            {"params": [m.fc1.weight, m.fc1.bias], "lr": 1e-3},
            {"params": m.fc2.parameters(), "lr": 1e-2, "weight_decay": 0.0},
        ]
    )
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(steps):
        opt.zero_grad()
        m(torch.randn(8, 4)).sum().backward()
        opt.step()
        sched.step()
    return m, opt, sched


def test_settings_are_readable(repo):
    m, opt, sched = _trained(import_fresh("model"))
    e = tvault.log_all(m, optimizer=opt, scheduler=sched)
    from tvault_git.gitutil.repo import open_repo
    from tvault_git.registry import entries as registry

    r = open_repo(None)
    o = registry.read_json(r, e.id, "optimizer.json")
    assert o["class"] == "torch.optim.adamw.AdamW"
    assert [g["params"] for g in o["param_groups"]] == [["fc1.weight", "fc1.bias"], ["fc2.weight", "fc2.bias"]]
    assert o["param_groups"][1]["weight_decay"] == 0.0 and o["param_groups"][0]["betas"] == [0.9, 0.999]
    s = registry.read_json(r, e.id, "scheduler.json")
    assert (
        s["class"] == "torch.optim.lr_scheduler.StepLR" and s["state"]["last_epoch"] == 3 and s["state"]["gamma"] == 0.5
    )
    out = run(repo, "show", e.id[:10]).stdout
    assert "Optimizer torch.optim.adamw.AdamW" in out and "Scheduler torch.optim.lr_scheduler.StepLR" in out
    with pytest.raises(tvault.InvalidInput, match="no optimizer state"):
        tvault.load_optimizer_into(opt, e.id)


def test_optimizer_state_round_trips(repo):
    model_mod = import_fresh("model")
    m, opt, _ = _trained(model_mod)
    e = tvault.log_all(m, optimizer=opt, save_optimizer_state=True)
    m2 = model_mod.Net()
    tvault.load_into(m2, e.id)
    opt2 = torch.optim.AdamW(
        [{"params": [m2.fc1.weight, m2.fc1.bias], "lr": 0.5}, {"params": m2.fc2.parameters(), "lr": 0.5}]
    )
    tvault.load_optimizer_into(opt2, e.id)
    a, b = opt.state_dict(), opt2.state_dict()
    assert [g["lr"] for g in b["param_groups"]] == [g["lr"] for g in a["param_groups"]] == [5e-4, 5e-3]
    for idx, st in a["state"].items():
        for k, v in st.items():
            assert torch.equal(v, b["state"][idx][k]), (idx, k)
    # both continue identically
    x = torch.randn(8, 4)
    for mm, oo in ((m, opt), (m2, opt2)):
        oo.zero_grad()
        mm(x).sum().backward()
        oo.step()
    assert torch.equal(m.fc1.weight, m2.fc1.weight)
    with pytest.raises(tvault.InvalidInput, match="not torch.optim.sgd.SGD"):
        tvault.load_optimizer_into(torch.optim.SGD(m2.parameters(), lr=0.1), e.id)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_log_and_load(repo):
    model_mod = import_fresh("model")
    m = model_mod.Net().cuda().half()
    e = tvault.log_all(m, result=torch.tensor(0.5, device="cuda"))
    sd = tvault.load(e.id)
    assert all(t.device.type == "cpu" for t in sd.values())
    assert all(torch.equal(sd[k], v.cpu()) for k, v in m.state_dict().items())
    m2 = model_mod.Net().cuda().half()
    tvault.load_into(m2, e.id)
    assert m2.fc1.weight.device.type == "cuda" and torch.equal(m2.fc1.weight, m.fc1.weight)
    assert tvault.load(e.id, device="cuda")["fc1.weight"].device.type == "cuda"
