"""train.optim.AdamW, which skips torch's dynamo wrappers, gives torch.optim.AdamW's numbers step for step, and
its state survives a save and load."""

from __future__ import annotations

import copy

import torch

from rnnchat.train.optim import AdamW


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Embedding(11, 6), torch.nn.GRU(6, 8, batch_first=True))


def _steps(model, opt, steps: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randint(0, 11, (4, 7), generator=gen)
        out, _ = model(x)
        loss = out.square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_same_parameters_and_state_as_torchs_adamw():
    ours_model, torch_model = _model(3), _model(3)
    kw = {"lr": 0.01, "weight_decay": 0.1, "betas": (0.9, 0.99)}
    ours, theirs = AdamW(ours_model.parameters(), **kw), torch.optim.AdamW(torch_model.parameters(), **kw)
    _steps(ours_model, ours, 5, seed=1)
    _steps(torch_model, theirs, 5, seed=1)
    assert _same(ours_model.state_dict(), torch_model.state_dict())
    assert not _same(ours_model.state_dict(), _model(3).state_dict())          # the steps moved the weights
    mine, others = ours.state_dict(), theirs.state_dict()
    assert mine["param_groups"] == others["param_groups"]
    assert all(_same(mine["state"][i], others["state"][i]) for i in others["state"])

    # Each loads the other's state and both go on alike.
    ours.load_state_dict(copy.deepcopy(others))
    theirs.load_state_dict(copy.deepcopy(mine))
    _steps(ours_model, ours, 3, seed=2)
    _steps(torch_model, theirs, 3, seed=2)
    assert _same(ours_model.state_dict(), torch_model.state_dict())


def test_a_step_records_no_graph_and_leaves_grad_mode_on():
    model = _model(4)
    opt = AdamW(model.parameters(), lr=0.01)
    _steps(model, opt, 1, seed=5)
    assert torch.is_grad_enabled()
    moments = [s["exp_avg"] for s in opt.state_dict()["state"].values()]
    assert len(moments) == len(list(model.parameters())) and not any(m.requires_grad for m in moments)
