"""A zero-class edge router nested in a plain one: the plain router's thresholds, with the lowest
threshold of a zero-class edge router fitted on the same training sub-images below them. Cells
flatter than that go to the zero class and every other cell stays on the branch the plain router
gives it (a jointly fitted four-class router also moves cells to wider branches, which costs time
in regions). Both thresholds come from training data (`classsr label --edge-router`).

Usage: python scripts/nest_zero.py PLAIN.pth ZERO.pth OUT.pth
"""
import sys

from classsr_plugin.checkpoint import load, save
from classsr_plugin.data.label import with_edge_router


def nest(plain, zero):
    cp, cz = plain.config["classifier"], zero.config["classifier"]
    tp, tz = cp["thresholds"], cz["thresholds"]
    if plain.zero_class or not zero.zero_class or tz[0] >= tp[0]:
        raise ValueError(f"need a plain router and a zero-class one whose lowest threshold ({tz[0]:g}) is below the "
                         f"plain router's ({tp[0]:g})")
    score = cp.get("score", "gradient")
    if cz.get("score", "gradient") != score:
        raise ValueError(f"both routers must use one score: plain {score!r}, zero {cz.get('score', 'gradient')!r}")
    return with_edge_router(zero, [tz[0], *tp], score).eval()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    import classsr_plugin.registry.basicsr  # noqa: F401  (BasicSR's archs for load)
    model = nest(load(sys.argv[1]), load(sys.argv[2]))
    save(model, sys.argv[3])
    print(f"wrote {sys.argv[3]}: thresholds {model.config['classifier']['thresholds']}")
