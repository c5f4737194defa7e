"""The BasicSR options files in this folder, written from one table per network.

Edit the table (NETS) or the template below, then run `python configs/basicsr/make_configs.py`;
tests/test_configs.py fails when a committed file differs from what this writes.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

SR_DATA = "classsr prepare --hr <HR folder> --out datasets/classsr_x4 ; classsr prepare --whole --hr <val HR> --out datasets/classsr_val_x4"
FSRCNN = "{type: FSRCNN, num_in_ch: 3, num_out_ch: 3, d: 56, s: 12, m: 4, upscale: 4, residual: true}"
SMALL_CLASSIFIER = ["  # FSRCNN is tiny: the paper's classifier (nf 128, 7.6 MFLOPs) would cost 15% of a d=56 tile;",
                    "  # nf 32 costs 0.72 MFLOPs (1.4%)",
                    "  classifier: {type: ClassModule, nf: 32}"]


def _restoration(task, args, stem):
    return dict(title=f"ClassSR-DnCNN {task} ({args})", scale=1, data_name=task, lr1="1e-3",
                data=f"classsr prepare --task {task} {args} --hr <clean folder> --out datasets/classsr_{task} ; "
                     f"classsr prepare --whole --task {task} {args} --hr <val clean> --out datasets/classsr_val_{task}",
                base="{type: DnCNN, num_in_ch: 3, num_out_ch: 3, num_feat: 64, num_layers: 17, bn: false}",
                base_name="DnCNN (num_feat=64)", val=["  val_tile: 32", "  val_stride: 24  # scale 1: wider overlap, see README"],
                classifier=["  classifier: {type: ClassModule, nf: 128}  # the paper's: 7.6 MFLOPs, 0.7% of a DnCNN-17 tile"])


# key -> what differs between networks; everything else is the template
NETS = {
    "FSRCNN_x4": dict(title="ClassSR-FSRCNN x4", base=FSRCNN, base_name="FSRCNN (d=56)", lr1="1e-3",
                      classifier=SMALL_CLASSIFIER, supernet=True),
    "CARN_x4": dict(title="ClassSR-CARN x4", base="{type: CARNM, num_in_ch: 3, num_out_ch: 3, nf: 64, group: 4, upscale: 4}",
                    base_name="CARN-M (nf=64)", lr1="2e-4"),
    "SRResNet_x4": dict(title="ClassSR-SRResNet x4",
                        base="{type: MSRResNet, num_in_ch: 3, num_out_ch: 3, num_feat: 64, num_block: 16, upscale: 4}",
                        base_name="MSRResNet (num_feat=64)", lr1="2e-4",
                        classifier=["  classifier: {type: ClassModule, nf: 128}  # the paper's: 7.6 MFLOPs, 0.15% of an MSRResNet tile"]),
    "RCAN_x4": dict(title="ClassSR-RCAN x4",
                    base="{type: RCAN, num_in_ch: 3, num_out_ch: 3, num_feat: 64, num_group: 10, num_block: 20, "
                         "squeeze_factor: 16, upscale: 4, res_scale: 1, img_range: 255., rgb_mean: [0.4488, 0.4371, 0.4040]}",
                    base_name="RCAN (num_feat=64)", lr1="1e-4"),
    "DnCNN_denoise_s25": _restoration("denoise", "--sigma 25", "s25"),
    "DnCNN_deblur_gauss": _restoration("deblur", "--blur gaussian --blur-sigma 0.5-3", "gauss"),
}
DEFAULTS = dict(scale=4, data=SR_DATA, data_name="x4", freeze=True, classifier=[], supernet=False, val=[])

PHASES = {  # phase: (file suffix, what it does, batch, lr, total iterations, pixel weight and the other losses)
    "branches": ("1_branches", "phase 1 of 3: every branch on the sub-images of its own class.", 16, None, 500000,
                 ["  pixel_opt: {type: L1Loss, loss_weight: 1.0, reduction: mean}"]),
    "supernet": ("1_supernet", None, 16, None, 500000, ["  pixel_opt: {type: L1Loss, loss_weight: 1.0, reduction: mean}"]),
    "classifier": ("2_classifier", "phase 2 of 3: branches frozen, the classifier learns with L1 + ClassLoss + "
                   "AverageLoss.", 96, "2e-4", 200000, None),
    "joint": ("3_joint", "phase 3 of 3: everything fine-tuned jointly with the same three losses.", 96, "2e-4", 200000,
              None),
}
PAPER_LOSSES = ["  pixel_opt: {type: L1Loss, loss_weight: 1000, reduction: mean}  # reference 2000:1:6",
                "  class_opt: {type: ClassLoss, loss_weight: 0.5}",
                "  average_opt: {type: AverageLoss, loss_weight: 3}"]


def _classsr_block(net, phase):
    n = net
    if phase == "branches":
        freeze = ("  freeze_widest: true   # the widest branch stays init_base (the base network); false: train it here"
                  if n["freeze"] else
                  "  freeze_widest: false  # no pretrained DnCNN in this recipe: the widest branch trains here too\n"
                  "                        # (true + init_base: it stays the base network)")
        return ["  phase: branches", *n["val"],
                f"  init_base: ~          # the trained {n['base_name']}: the widest branch, required while freeze_widest",
                "  init_narrow: scratch  # or: slice (leading channels of the widest branch)", freeze,
                "  distill: 0            # weight of L1 to the widest branch's output (needs a trained init_base)"]
    if phase == "supernet":
        return ["  phase: supernet", *n["val"],
                f"  init_base: ~          # a trained {n['base_name']} to start from (recommended)",
                "  freeze_widest: false  # the narrow branches are slices of the widest: it trains with them",
                "  distill: 1            # weight of L1 of the narrower widths to the widest's output"]
    if phase == "classifier":
        return ["  phase: classifier", *n["val"],
                "  router: paper         # or: supervised (cross-entropy to `classsr label --by oracle` classes; set",
                "                        # datasets.train.meta_info to that file)"]
    return ["  phase: joint", *n["val"]]


def _header(key, net, phase):
    suffix, what = PHASES[phase][:2]
    name = f"ClassSR_{key}_{suffix}"
    if phase == "supernet":
        lines = [f"# {net['title']} with shared-weight branches (ARM-style), phase 1 of 2: the supernet. Every batch",
                 "# trains the widest, the narrowest and a random middle width (the sandwich rule); the narrow",
                 f"# branches are the leading slices of the widest's tensors. Phase 2: ClassSR_{key}_2_classifier.yml",
                 "# with network_g.share_weights: true and path.pretrain_network_g set to this run's weights."]
    else:
        lines = [f"# {net['title']}, {what}"]
    lines.append(f"# Data: {net['data']}")
    if phase in ("classifier", "joint"):
        prev = "1" if phase == "classifier" else "2"
        lines.append(f"# Needs phase {prev}'s net_g_latest.pth (path.pretrain_network_g).")
    lines += [f"# Run:  classsr train -opt configs/basicsr/{name}.yml", f"name: {name}"]
    return name, lines


def _common(net, train_name, batch, pretrain, lr, total, losses, model_type="ClassSRModel"):
    s, d = net["scale"], net["data_name"]
    crop = s if s > 1 else 0
    return [
        f"model_type: {model_type}", f"scale: {s}", "num_gpu: auto", "manual_seed: 0", "", *train_name,
        "datasets:", "  train:", f"    name: classsr_{d}", "    type: ClassSRDataset", f"    dataroot: datasets/classsr_{d}",
        f"    scale: {s}", "    use_hflip: true", "    use_rot: true", "    num_worker_per_gpu: 2",
        f"    batch_size_per_gpu: {batch}", "    dataset_enlarge_ratio: 1", "    prefetch_mode: ~",
        "  val:", f"    name: classsr_val_{d}", "    type: PairedImageDataset", f"    dataroot_gt: datasets/classsr_val_{d}/hr",
        f"    dataroot_lq: datasets/classsr_val_{d}/lr", "    io_backend: {type: disk}", "",
        "path:", f"  pretrain_network_g: {pretrain}", "  strict_load_g: true", "  resume_state: ~", "",
        "train:", "  ema_decay: 0", f"  optim_g: {{type: Adam, lr: !!float {lr}, weight_decay: 0, betas: [0.9, 0.99]}}",
        f"  scheduler: {{type: CosineAnnealingRestartLR, periods: [{total}], restart_weights: [1], eta_min: !!float 1e-7}}",
        f"  total_iter: {total}", "  warmup_iter: -1", *losses, "",
        "val:", "  val_freq: !!float 5e3", "  save_img: false", "  metrics:",
        f"    psnr: {{type: calculate_psnr, crop_border: {crop}, test_y_channel: false}}",
        f"    psnr_y: {{type: calculate_psnr, crop_border: {crop}, test_y_channel: true}}",
        f"    ssim: {{type: calculate_ssim, crop_border: {crop}, test_y_channel: false}}",
        f"    ssim_y: {{type: calculate_ssim, crop_border: {crop}, test_y_channel: true}}", "",
        "logger:", "  print_freq: 100", "  save_checkpoint_freq: !!float 5e3", "  use_tb_logger: true", "",
        "dist_params:", "  backend: nccl", "  port: 29500"]


def classsr_file(key, phase):
    net = {**DEFAULTS, **NETS[key]}
    name, lines = _header(key, net, phase)
    suffix, _, batch, lr, total, losses = PHASES[phase]
    prev = {"classifier": "1_branches", "joint": "2_classifier"}.get(phase)
    pretrain = f"experiments/ClassSR_{key}_{prev}/models/net_g_latest.pth" if prev else "~"
    network = ["network_g:", "  type: ClassSR", "  num_classes: 3", *(["  share_weights: true"] if phase == "supernet" else []),
               f"  base: {net['base']}", *net["classifier"], ""]
    body = ["classsr:", *_classsr_block(net, phase), "", *network]
    return name, lines + _common(net, body, batch, pretrain, lr or net["lr1"], total, losses or PAPER_LOSSES)


BASELINES = {  # plain networks, the reference each ClassSR recipe trains first (its widest branch)
    "FSRCNN_x4": dict(note="d=56, the widest ClassSR-FSRCNN branch alone", lr="1e-3", extra=[
        "# residual: true adds bicubic upsampling of the input (the net learns what bicubic misses; see archs/fsrcnn.py)"]),
    "SRResNet_x4": dict(note="BasicSR's MSRResNet, num_feat 64, 16 blocks, the widest ClassSR-SRResNet branch alone",
                        lr="2e-4", extra=[]),
    "DnCNN_denoise_s25": dict(note="17 layers, num_feat 64, the widest ClassSR-DnCNN branch alone", lr="1e-3",
                              extra=[]),
    "DnCNN_deblur_gauss": dict(note="17 layers, num_feat 64, the widest ClassSR-DnCNN branch alone", lr="1e-3",
                               extra=[]),
}


def baseline_file(key):
    net, spec = {**DEFAULTS, **NETS[key]}, BASELINES[key]
    arch = net["base"].split(",")[0].split(":")[1].strip()
    task = key.split("_", 1)[1]  # x4, denoise_s25, ...
    name = f"{arch}_{task}_baseline"
    of = net["title"].split(" x4")[0].split(" (")[0]
    lines = [f"# Plain {arch} {task.replace('_', ' ')} ({spec['note']}): the baseline for {of}.",
             "# Trained on the same ClassSR sub-images (the class label is ignored by SRModel) for as many",
             "# iterations as the three ClassSR phases together; validated on the same whole images.",
             f"# Data: {net['data']}",
             f"# Run:  classsr train -opt configs/basicsr/{name}.yml   (the plugin registers its archs)",
             f"name: {name}"]
    network = [*spec["extra"], f"network_g: {net['base']}", ""]
    return name, lines + _common(net, network, 16, "~", spec["lr"], 500000, PHASES["branches"][5], "SRModel")


def all_files():
    """{file name: text} of every options file in this folder."""
    out = dict(baseline_file(key) for key in BASELINES)
    for key, net in NETS.items():
        for phase in PHASES:
            if phase == "supernet" and not net.get("supernet"):
                continue
            name, lines = classsr_file(key, phase)
            out[name] = lines
    return {f"{name}.yml": "\n".join(lines) + "\n" for name, lines in out.items()}


def main(folder=HERE):
    for name, text in all_files().items():
        path = os.path.join(folder, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    print(f"wrote {len(all_files())} options files to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
