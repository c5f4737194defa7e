# ClassSR around MMagic's RRDBNet (ESRGAN's generator), x4, phase 1 of 3: every branch on its class's sub-images.
_base_ = './classsr_base_x4.py'
model = dict(generator=dict(base=dict(type='RRDBNet', in_channels=3, out_channels=3, mid_channels=64, num_blocks=23,
          growth_channels=32, upscale_factor=4)))
work_dir = 'work_dirs/classsr_rrdbnet_x4_1_branches'
