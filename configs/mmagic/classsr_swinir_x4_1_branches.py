# ClassSR around MMagic's SwinIRNet (lightweight x4), x4, phase 1 of 3: every branch on its class's sub-images.
_base_ = './classsr_base_x4.py'
model = dict(generator=dict(base=dict(type='SwinIRNet', upscale=4, in_chans=3, img_size=64, window_size=8, img_range=1.0,
          depths=[6, 6, 6, 6], embed_dim=60, num_heads=[6, 6, 6, 6], mlp_ratio=2,
          upsampler='pixelshuffledirect', resi_connection='1conv')))
work_dir = 'work_dirs/classsr_swinir_x4_1_branches'
