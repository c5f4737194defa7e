import pytest
import torch

# The BasicSR adapter: aliases torchvision for basicsr 1.4.2 and registers the plugin (the
# core alone, no toolkit imported: test_core_alone.py).
import classsr_plugin.registry.basicsr  # noqa: F401


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
