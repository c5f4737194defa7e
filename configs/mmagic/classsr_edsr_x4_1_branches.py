# ClassSR around MMagic's EDSRNet, x4, phase 1 of 3: every branch on its class's sub-images.
_base_ = './classsr_base_x4.py'
model = dict(generator=dict(base=dict(type='EDSRNet', in_channels=3, out_channels=3, mid_channels=64, num_blocks=16, upscale_factor=4,
          res_scale=1, rgb_mean=[0.4488, 0.4371, 0.4040], rgb_std=[1.0, 1.0, 1.0])))
work_dir = 'work_dirs/classsr_edsr_x4_1_branches'
