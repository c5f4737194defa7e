import pytest
import torch

# The BasicSR adapter: aliases torchvision for basicsr 1.4.2 and registers the plugin.
import classsr_plugin.registry.basicsr  # noqa: F401


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
