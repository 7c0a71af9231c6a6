"""A dirty submodule: the entry's patch holds the submodule's own changes and commit.

Before, the patch held only ``-Subproject commit X`` / ``+Subproject commit X-dirty``: the model
code that ran (edited inside the submodule) could not be recovered from the entry.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import GIT_ENV, git, init_repo, tvault, write

MODEL = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
"""

LOG = """
import sys, torch, tvault_git as tv
sys.path.insert(0, ".")
from trainer.model import Net
print(tv.log_all(Net(), result=0.5, name="sub").id)
"""


def test_dirty_submodule_patch_is_recorded(tmp_path: Path) -> None:
    trainer = init_repo(tmp_path / "trainer", with_model=False)
    write(trainer / "model.py", MODEL)
    write(trainer / "data.py", "ROWS = 10\n")
    git(trainer, "add", ".")
    git(trainer, "commit", "-q", "-m", "trainer")
    sub_head = git(trainer, "rev-parse", "HEAD").stdout.strip()
    sup = init_repo(tmp_path / "sup", with_model=False)
    write(sup / "train.py", "EPOCHS = 1\n")
    git(sup, "add", ".")
    git(sup, "commit", "-q", "-m", "superproject")
    git(sup, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(trainer), "trainer")
    git(sup, "commit", "-q", "-m", "add trainer")

    model = sup / "trainer" / "model.py"  # the uncommitted change inside the submodule
    model.write_text(model.read_text().replace("nn.Linear(4, 2)", "nn.Linear(4, 2)  # tuned: 2 outputs"))
    env = {**os.environ, **GIT_ENV}
    p = subprocess.run([sys.executable, "-c", LOG], cwd=sup, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    entry = p.stdout.strip().splitlines()[-1]

    out = tvault(sup, "show", "--patch", entry).stdout
    assert "Subproject commit" in out  # the superproject's own line stays
    assert f"Submodule trainer {sub_head} contains modified content" in out, out
    assert "+++ b/trainer/model.py" in out and "# tuned: 2 outputs" in out, out
    assert "data.py" not in out, "only what changed"

    git(sup / "trainer", "checkout", "-q", "--", "model.py")  # clean again: a second entry to compare with
    p = subprocess.run([sys.executable, "-c", LOG], cwd=sup, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    clean = p.stdout.strip().splitlines()[-1]
    d = tvault(sup, "diff", entry, clean).stdout
    assert "trained with uncommitted changes" in d and "inside submodule trainer" in d, d
