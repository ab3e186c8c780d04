import torch

from logoseg.models.decoder import GuidedDecoder, GuidedUpsampleStage


def make_decoder(seed=0):
    torch.manual_seed(seed)
    return GuidedDecoder(dim=8, num_queries=3, clip_dim=6, guidance_channels=(5, 4), channels=(8, 4)).eval()


def test_correlation_is_the_channelwise_product_of_map_and_query():
    fused = torch.randn(2, 8, 3, 4)
    queries = torch.randn(2, 3, 8)
    corr = GuidedDecoder.correlation(fused, queries)
    assert corr.shape == (2, 8, 3, 3, 4)
    for b in range(2):
        for t in range(3):
            for c in range(8):
                assert torch.allclose(corr[b, c, t], fused[b, c] * queries[b, t, c])


def test_any_vocabulary_size_and_class_order():
    decoder = make_decoder()
    fused, queries = torch.randn(2, 8, 3, 4), torch.randn(2, 3, 8)
    guidance = [torch.randn(2, 5, 3, 4), torch.randn(2, 4, 3, 4)]
    for num_classes in (1, 5, 40):
        classes = torch.randn(2, num_classes, 6)
        logits = decoder(fused, queries, guidance, classes)
        assert logits.shape == (2, num_classes, 12, 16)
    perm = torch.randperm(40)
    assert torch.allclose(decoder(fused, queries, guidance, classes[:, perm]), logits[:, perm], atol=1e-6)


def test_logits_are_scaled_cosines_plus_bias():
    decoder = make_decoder()
    fused, queries = torch.randn(1, 8, 2, 2), torch.randn(1, 3, 8)
    guidance = [torch.randn(1, 5, 2, 2), torch.randn(1, 4, 2, 2)]
    classes = torch.randn(1, 2, 6)
    logits = decoder(fused, queries, guidance, classes)
    bound = decoder.log_scale.exp() + decoder.bias.abs()
    assert logits.abs().max() <= bound + 1e-5
    # identical class embeddings give identical maps
    same = decoder(fused, queries, guidance, classes[:, :1].expand(1, 2, 6))
    assert torch.allclose(same[:, 0], same[:, 1])


def test_guidance_modulates_only_after_its_projection_learns():
    torch.manual_seed(0)
    stage = GuidedUpsampleStage(4, 4, guidance_channels=3)
    x = torch.randn(6, 4, 5, 5)  # B*T = 2*3
    g1, g2 = torch.randn(2, 3, 7, 7), torch.randn(2, 3, 7, 7)
    assert torch.allclose(stage(x, g1, 3), stage(x, g2, 3))  # zero-initialised FiLM: no effect at start
    torch.nn.init.normal_(stage.guidance_proj.weight)
    out1, out2 = stage(x, g1, 3), stage(x, g2, 3)
    assert out1.shape == (6, 4, 10, 10)
    assert not torch.allclose(out1, out2)
    # the T query maps of one image share that image's guidance
    g_mixed = torch.cat([g1[:1], g2[1:]])
    assert torch.allclose(stage(x, g_mixed, 3)[:3], out1[:3])


def test_query_maps_merge_is_the_1x1_conv_over_the_maps_stacked_as_channels():
    decoder = make_decoder().double()
    maps = torch.randn(2 * 3, 4, 5, 7, dtype=torch.float64)  # B*T maps of E = 4 channels
    expected = decoder.merge_queries(maps.reshape(2, 3 * 4, 5, 7)).flatten(2).transpose(1, 2)  # (B, H*W, E)
    for layout in (torch.contiguous_format, torch.channels_last):
        merged = decoder.merge_query_maps(maps.contiguous(memory_format=layout))
        torch.testing.assert_close(merged, expected, rtol=1e-12, atol=1e-12)
