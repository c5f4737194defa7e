

def test_photo_of_inverts_sub_image_name():
    from classsr_plugin.data.prepare import photo_of, sub_image_name
    for stem in ("mate_Storm", "a_s1.00_b", "x_0001_0002"):
        assert photo_of(sub_image_name(stem, 0.75, 16, 480)) == stem
