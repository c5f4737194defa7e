"""ClassSRModel's file hooks in BasicSR: what SRModel does, with two differences.
- Loads pass weights_only=True explicitly (pretrain_network_g, resumed nets), so no
  environment setting or torch default can make a checkpoint run code.
- Saves are atomic (temporary file, then rename): a run killed while writing net_g_*.pth or
  training_states/*.state leaves the previous files whole, never a 0-byte one.
"""
import os

from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only

from ..atomic import save_torch
from .. import checkpoint


def load_network(self, net, load_path, strict=True, param_key="params"):
    net = self.get_bare_model(net)
    if not os.path.exists(str(load_path)):  # BasicSR loads only path.pretrain_network_g (and resumed nets)
        raise FileNotFoundError(f"path.pretrain_network_g: {load_path} does not exist")
    state = checkpoint.weights(load_path, key=param_key)  # CRCs and finite values checked
    get_root_logger().info(f"Loading {net.__class__.__name__} model from {load_path}, with param key: [{param_key}].")
    self._print_different_keys_loading(net, state, strict)
    checkpoint.fill(net, state, strict=strict, where=load_path)


def _save(obj, path):
    try:
        save_torch(obj, path)
    except Exception as err:  # as BasicSR: a failed save does not stop training; the old file stays whole
        get_root_logger().warning(f"could not save {path} ({err}); the previous file, if any, is intact")


@master_only
def save_network(self, net, net_label, current_iter, param_key="params"):
    nets = net if isinstance(net, list) else [net]
    keys = param_key if isinstance(param_key, list) else [param_key]
    if len(nets) != len(keys):
        raise ValueError(f"save_network: {len(nets)} networks for {len(keys)} param keys")
    save = {k: {(n[7:] if n.startswith("module.") else n): p.cpu()
                for n, p in self.get_bare_model(m).state_dict().items()} for m, k in zip(nets, keys)}
    name = f"{net_label}_{'latest' if current_iter == -1 else current_iter}.pth"
    _save(save, os.path.join(self.opt["path"]["models"], name))


@master_only
def save_training_state(self, epoch, current_iter):
    if current_iter == -1:
        return
    state = {"epoch": epoch, "iter": current_iter, "optimizers": [o.state_dict() for o in self.optimizers],
             "schedulers": [s.state_dict() for s in self.schedulers]}
    _save(state, os.path.join(self.opt["path"]["training_states"], f"{current_iter}.state"))
