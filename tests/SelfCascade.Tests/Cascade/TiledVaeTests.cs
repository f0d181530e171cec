using SelfCascade.Cascade;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Cascade;

public class TiledVaeTests
{
    public TiledVaeTests() => TorchSetup.Ensure();

    // The project's own Even layout (diffusers' default layout is matched against diffusers in TiledVaeParityTests).
    // f = 2, tile 32 px = 16 latents, overlap 0.25 = 4 latents (8 px).
    private static readonly TiledVaeOptions Small = new() { ScaleFactor = 2, TileSampleSize = 32, OverlapFactor = 0.25, Layout = VaeTileLayout.Even };

    /// <summary>
    /// A fixed random conv "decoder": conv3x3 (4->16) at latent resolution, SiLU, nearest x2, conv3x3, SiLU, conv3x3
    /// (->3). Receptive field: 1 latent + 2 pixels = 2 latents of context each side.
    /// </summary>
    private sealed class ConvDecoder : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> c1, c2, c3;
        public ConvDecoder(long seed) : base("dec")
        {
            torch.manual_seed(seed);
            c1 = nn.Conv2d(4, 16, 3, padding: 1);
            c2 = nn.Conv2d(16, 16, 3, padding: 1);
            c3 = nn.Conv2d(16, 3, 3, padding: 1);
            RegisterComponents();
        }
        public override Tensor forward(Tensor z)
        {
            using var scope = NewDisposeScope();
            var h = nn.functional.silu(c1.forward(z));
            h = nn.functional.interpolate(h, scale_factor: [2, 2], mode: InterpolationMode.Nearest);
            h = nn.functional.silu(c2.forward(h));
            return c3.forward(h).MoveToOuterDisposeScope();
        }
    }

    /// <summary>A fixed random conv "encoder": conv3x3 (3->8), SiLU, stride-2 conv3x3 (8->8) = moments at f = 2.</summary>
    private sealed class ConvEncoder : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> c1, c2;
        public ConvEncoder(long seed) : base("enc")
        {
            torch.manual_seed(seed);
            c1 = nn.Conv2d(3, 8, 3, padding: 1);
            c2 = nn.Conv2d(8, 8, 3, stride: 2, padding: 1);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            return c2.forward(nn.functional.silu(c1.forward(x))).MoveToOuterDisposeScope();
        }
    }

    private static Tensor SmoothLatent(long b, long c, long h, long w)
    {
        using var scope = NewDisposeScope();
        var y = linspace(0, 3, h).view(1, 1, h, 1);
        var x = linspace(0, 4, w).view(1, 1, 1, w);
        var ch = arange(c, dtype: ScalarType.Float32).view(1, c, 1, 1);
        return (sin(x * 1.3 + ch) * cos(y * 0.9 - ch * 0.5) + (x * y * 0.1)).expand(b, c, h, w).contiguous().MoveToOuterDisposeScope();
    }

    [Theory]
    [InlineData(64, 64, 16)]
    [InlineData(100, 64, 16)]
    [InlineData(200, 64, 16)]
    [InlineData(120, 64, 16)]
    [InlineData(1000, 64, 16)]
    [InlineData(37, 16, 4)]
    [InlineData(17, 16, 0)]
    [InlineData(300, 64, 32)]
    public void Tiles_cover_the_axis_with_full_tiles_and_the_overlap(long length, long tile, long overlap)
    {
        var spans = TileLayout.Spans(length, tile, overlap);
        Assert.Equal(0, spans[0].Start);
        Assert.Equal(length, spans[^1].End);
        Assert.All(spans, s => Assert.Equal(Math.Min(tile, length), s.Size));
        for (int i = 1; i < spans.Count; i++)
        {
            Assert.True(spans[i].Start > spans[i - 1].Start);
            Assert.True(spans[i - 1].End - spans[i].Start >= overlap, $"overlap {spans[i - 1].End - spans[i].Start} < {overlap}");
        }
        if (length > tile) Assert.Equal((length - overlap + tile - overlap - 1) / (tile - overlap), spans.Count);
    }

    [Theory]
    [InlineData(200, 64, 16, 8)]
    [InlineData(120, 64, 16, 8)] // tiles 0 and 2 overlap too: three tiles meet
    [InlineData(37, 16, 4, 1)]
    [InlineData(17, 16, 0, 2)]
    [InlineData(300, 64, 32, 8)]
    public void Blend_weights_sum_to_one_everywhere(long length, long tile, long overlap, long scale)
    {
        foreach (var blend in new[] { TileBlend.Smoothstep, TileBlend.Linear })
        foreach (var margin in new[] { 0.0, 0.125, 0.25 })
            AssertPartitionOfUnity(length, tile, overlap, scale, blend, margin);
    }

    private static void AssertPartitionOfUnity(long length, long tile, long overlap, long scale, TileBlend blend, double margin)
    {
        var spans = TileLayout.Spans(length, tile, overlap);
        var weights = TileLayout.Weights(spans, scale, blend, margin);
        var sum = new double[length * scale];
        for (int i = 0; i < spans.Count; i++)
        {
            Assert.Equal(spans[i].Size * scale, weights[i].Length);
            for (long k = 0; k < weights[i].Length; k++)
            {
                Assert.InRange(weights[i][k], 0.0, 1.0);
                if (margin == 0) Assert.True(weights[i][k] > 0);
                sum[spans[i].Start * scale + k] += weights[i][k];
            }
        }
        Assert.All(sum, s => Assert.Equal(1.0, s, 12));
        // In a two-tile overlap the ramps alone sum to 1 (no normalisation needed): the smoothstep profile, or the
        // linear cross-fade of diffusers' blend_h/blend_v.
        if (spans.Count == 2 && margin == 0)
        {
            long start = spans[1].Start * scale, end = spans[0].End * scale, e = end - start;
            for (long p = start; p < end; p++)
            {
                double t = (p - start + 0.5) / e;
                double expected = blend == TileBlend.Linear ? t : t * t * (3 - 2 * t);
                Assert.Equal(expected, weights[1][p - start], 12);
                Assert.Equal(1 - expected, weights[0][p], 12);
            }
        }
    }

    [Fact]
    public void Blend_weights_also_sum_to_one_in_two_dimensions()
    {
        using var scope = NewDisposeScope();
        var rows = TileLayout.Spans(50, 16, 4);
        var cols = TileLayout.Spans(37, 16, 4);
        var wr = TileLayout.Weights(rows, 2);
        var wc = TileLayout.Weights(cols, 2);
        var total = zeros(100, 74, dtype: ScalarType.Float64);
        for (int i = 0; i < rows.Count; i++)
        for (int j = 0; j < cols.Count; j++)
            total.narrow(0, rows[i].Start * 2, rows[i].Size * 2).narrow(1, cols[j].Start * 2, cols[j].Size * 2)
                 .add_(tensor(wr[i]).view(-1, 1) * tensor(wc[j]).view(1, -1));
        Assert.True((total - 1).abs().max().item<double>() < 1e-12);
    }

    [Fact]
    public void One_tile_decode_is_exactly_the_untiled_decode()
    {
        using var scope = NewDisposeScope();
        using var dec = new ConvDecoder(1);
        var z = randn(2, 4, 16, 12, generator: new Generator(3));
        using var _ = no_grad();
        var whole = dec.forward(z);
        var tiled = TiledVae.Decode(dec.forward, z, Small);
        Parity.AssertEqual(tiled, whole, "single-tile decode");
    }

    [Fact]
    public void Tiled_decode_matches_untiled_away_from_tile_edges_and_closely_everywhere()
    {
        using var scope = NewDisposeScope();
        using var dec = new ConvDecoder(1);
        var z = randn(1, 4, 40, 57, generator: new Generator(4));
        using var _ = no_grad();
        var whole = dec.forward(z);
        int calls = 0;
        var tiled = TiledVae.Decode(t => { calls++; return dec.forward(t); }, z, Small);
        Assert.Equal(whole.shape, tiled.shape);
        var rows = TileLayout.Spans(40, 16, 4);
        var cols = TileLayout.Spans(57, 16, 4);
        Assert.Equal(rows.Count * cols.Count, calls);
        Assert.True(rows.Count >= 3 && cols.Count >= 4);

        // Exact wherever every covering tile sees the full receptive field (2 latents = 4 px) inside itself.
        var mask = ones(1, 1, 80, 114, dtype: ScalarType.Bool);
        const int rf = 4;
        foreach (var s in rows.Skip(1)) mask.narrow(2, s.Start * 2, rf).fill_(false);
        foreach (var s in rows.SkipLast(1)) mask.narrow(2, s.End * 2 - rf, rf).fill_(false);
        foreach (var s in cols.Skip(1)) mask.narrow(3, s.Start * 2, rf).fill_(false);
        foreach (var s in cols.SkipLast(1)) mask.narrow(3, s.End * 2 - rf, rf).fill_(false);
        var diff = (tiled - whole).abs();
        double inside = diff.masked_select(mask.expand_as(diff)).max().item<float>();
        Assert.True(inside < 1e-5, $"tiled differs from untiled by {inside} away from tile edges");

        // Near tile edges the error is weighted down by the ramps: small relative to the signal.
        double scale = whole.abs().max().item<float>();
        double worst = diff.max().item<float>();
        double rms = diff.square().mean().sqrt().item<float>();
        Assert.True(worst < 0.1 * scale, $"max error {worst} vs max|ref| {scale}");
        Assert.True(rms < 0.01 * scale, $"rms error {rms} vs max|ref| {scale}");
        Assert.True(worst > 0, "the test decoder should see the tile edges (else this test checks nothing)");
    }

    /// <summary>
    /// Seams: on a smooth latent, the horizontal gradient of the tiled decode inside the tile overlaps is no larger
    /// than the untiled image's gradient elsewhere, and stays close to the untiled gradient at the same columns.
    /// Tiles of 32 latents overlapping by 8 (16 px) against a receptive field of 4 px.
    /// </summary>
    [Fact]
    public void Tiled_decode_leaves_no_seams_on_a_smooth_input()
    {
        using var scope = NewDisposeScope();
        using var dec = new ConvDecoder(2);
        var options = new TiledVaeOptions { ScaleFactor = 2, TileSampleSize = 64, OverlapFactor = 0.25, Layout = VaeTileLayout.Even }; // default blend and margin
        using var _ = no_grad();
        var z = SmoothLatent(1, 4, 40, 120);
        var whole = dec.forward(z);
        var tiled = TiledVae.Decode(dec.forward, z, options);
        var cols = TileLayout.Spans(120, 32, 8);
        Assert.Equal(5, cols.Count);
        var gTiled = ColumnGradients(tiled);
        var gWhole = ColumnGradients(whole);
        var zone = OverlapColumns(cols, 2);
        int margin = 8; // the image's own border (zero padding) is not a tile seam
        var interior = Enumerable.Range(margin, gWhole.Length - 2 * margin).ToArray();
        double wholeMax = interior.Max(x => gWhole[x]);
        double tiledZoneMax = zone.Max(x => gTiled[x]);
        Assert.True(tiledZoneMax <= wholeMax, $"steepest step in the overlaps {tiledZoneMax:G4} > the image's steepest gradient {wholeMax:G4}");
        double excess = zone.Max(x => Math.Abs(gTiled[x] - gWhole[x]));
        double typical = interior.Select(x => gWhole[x]).Order().ElementAt(interior.Length / 2);
        Assert.True(excess <= 0.5 * typical, $"excess gradient {excess:G4} vs median gradient {typical:G4}");

        // diffusers' profile (linear ramps over the whole overlap) leaves a larger step on the same input.
        var linear = TiledVae.Decode(dec.forward, z, options with { Blend = TileBlend.Linear, EdgeMargin = 0 });
        var gLinear = ColumnGradients(linear);
        double linearExcess = zone.Max(x => Math.Abs(gLinear[x] - gWhole[x]));
        Assert.True(excess < linearExcess, $"default blend excess {excess:G4} not below the linear ramp's {linearExcess:G4}");
    }

    [Fact]
    public void Hard_cut_tiles_would_show_seams()
    {
        // The seam measure can fail: four 32-latent tiles with no overlap (no blending) put steps at the cuts.
        using var scope = NewDisposeScope();
        using var dec = new ConvDecoder(2);
        using var _ = no_grad();
        var z = SmoothLatent(1, 4, 40, 128);
        var hard = TiledVae.Decode(dec.forward, z, new TiledVaeOptions { ScaleFactor = 2, TileSampleSize = 64, OverlapFactor = 0, Layout = VaeTileLayout.Even });
        var whole = dec.forward(z);
        var gHard = ColumnGradients(hard);
        var gWhole = ColumnGradients(whole);
        int[] cuts = [63, 127, 191];
        var interior = Enumerable.Range(8, gWhole.Length - 16).ToArray();
        double excess = cuts.Max(x => Math.Abs(gHard[x] - gWhole[x]));
        double typical = interior.Select(x => gWhole[x]).Order().ElementAt(interior.Length / 2);
        Assert.True(excess > 0.5 * typical, $"hard cut excess {excess:G4} vs median {typical:G4}");
    }

    /// <summary>Horizontal gradient magnitude per column step x -> x+1, maximised over batch, channels and rows (rows near the top/bottom border skipped).</summary>
    private static double[] ColumnGradients(Tensor img)
    {
        using var scope = NewDisposeScope();
        var g = (img.narrow(3, 1, img.shape[3] - 1) - img.narrow(3, 0, img.shape[3] - 1)).abs().narrow(2, 8, img.shape[2] - 16);
        return g.amax([0, 1, 2]).data<float>().Select(v => (double)v).ToArray();
    }

    /// <summary>Column steps that touch an overlap between neighbouring tiles (output pixels).</summary>
    private static int[] OverlapColumns(IReadOnlyList<TileSpan> spans, int scale)
    {
        var set = new SortedSet<int>();
        for (int i = 1; i < spans.Count; i++)
            for (long x = spans[i].Start * scale - 1; x < spans[i - 1].End * scale; x++) set.Add((int)x);
        return set.ToArray();
    }

    [Fact]
    public void Tiled_encode_matches_untiled_on_one_tile_and_closely_on_many()
    {
        using var scope = NewDisposeScope();
        using var enc = new ConvEncoder(5);
        using var _ = no_grad();
        var small = randn(1, 3, 24, 32, generator: new Generator(6));
        Parity.AssertEqual(TiledVae.Encode(enc.forward, small, Small), enc.forward(small), "single-tile encode");

        var img = SmoothLatent(2, 3, 96, 118);
        var whole = enc.forward(img);
        var tiled = TiledVae.Encode(enc.forward, img, Small);
        Assert.Equal(new long[] { 2, 8, 48, 59 }, tiled.shape);
        var diff = (tiled - whole).abs();
        double scale = whole.abs().max().item<float>();
        Assert.True(diff.max().item<float>() < 0.1 * scale, $"encode max error {diff.max().item<float>()}");
        Assert.True(diff.square().mean().sqrt().item<float>() < 0.01 * scale);
        // Away from tile edges (receptive field 2 px = 1 latent) the moments are exact.
        var rows = TileLayout.Spans(48, 16, 4);
        var mask = ones(1, 1, 48, 59, dtype: ScalarType.Bool);
        foreach (var s in rows.Skip(1)) mask.narrow(2, s.Start, 1).fill_(false);
        foreach (var s in rows.SkipLast(1)) mask.narrow(2, s.End - 1, 1).fill_(false);
        foreach (var s in TileLayout.Spans(59, 16, 4).Skip(1)) mask.narrow(3, s.Start, 1).fill_(false);
        foreach (var s in TileLayout.Spans(59, 16, 4).SkipLast(1)) mask.narrow(3, s.End - 1, 1).fill_(false);
        Assert.True(diff.masked_select(mask.expand_as(diff)).max().item<float>() < 1e-5);
        Assert.Throws<ArgumentException>(() => TiledVae.Encode(enc.forward, randn(1, 3, 33, 32), Small));
    }

    [Fact]
    public void Half_precision_tiles_blend_in_fp32_and_come_back_in_their_dtype()
    {
        using var scope = NewDisposeScope();
        var z = SmoothLatent(1, 4, 40, 40);
        // An exactly tile-local "decoder" (nearest upsample): the blend of identical overlaps must reproduce it.
        Tensor Up(Tensor t) => nn.functional.interpolate(t, scale_factor: [2, 2], mode: InterpolationMode.Nearest).to(ScalarType.Float16);
        var tiled = TiledVae.Decode(Up, z, Small);
        Assert.Equal(ScalarType.Float16, tiled.dtype);
        Assert.True((tiled.to(ScalarType.Float32) - Up(z).to(ScalarType.Float32)).abs().max().item<float>() < 2e-3);
    }

    [Fact]
    public void Wrong_scale_factor_is_reported()
    {
        using var scope = NewDisposeScope();
        var z = randn(1, 4, 40, 40);
        var e = Assert.Throws<InvalidOperationException>(() => TiledVae.Decode(t => t, z, Small));
        Assert.Contains("VAE scale factor", e.Message);
    }

    [Theory]
    [InlineData(VaeTileLayout.Even)]
    [InlineData(VaeTileLayout.Diffusers)]
    public void Tiled_decode_does_not_leak_tensors(VaeTileLayout layout)
    {
        using var dec = new ConvDecoder(1);
        using var _ = no_grad();
        using var z = randn(1, 4, 40, 57);
        void Once() { using var r = TiledVae.Decode(dec.forward, z, Small with { Layout = layout }); }
        Once();
        long before = DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        Once();
        Once();
        long after = DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        Assert.Equal(before, after);
    }

    [Fact]
    public void Tiling_policy()
    {
        var o = new TiledVaeOptions(); // f 8, 64-latent tiles, auto above 1024² px
        Assert.False(TiledVae.ShouldTile(VaeTiling.Off, 256, 256, o));
        Assert.True(TiledVae.ShouldTile(VaeTiling.On, 96, 96, o));
        Assert.False(TiledVae.ShouldTile(VaeTiling.On, 64, 64, o)); // one tile covers it: nothing to tile
        Assert.False(TiledVae.ShouldTile(VaeTiling.Auto, 128, 128, o)); // 1024²: SDXL native decode stays untiled
        Assert.True(TiledVae.ShouldTile(VaeTiling.Auto, 128, 256, o));  // 2048x1024
        Assert.True(TiledVae.ShouldTile(VaeTiling.Auto, 256, 256, o));  // 2048² (~9.7 GiB untiled)
        Assert.False(TiledVae.ShouldTile(VaeTiling.Auto, 96, 96, o));
        Assert.True(TiledVae.ShouldTile(VaeTiling.Auto, 96, 96, o, memoryBudgetBytes: 1L << 30)); // 768²: ~1.4 GiB > 1 GiB
        Assert.Equal(64, o.TileLatentSize);
        Assert.Equal(16, o.OverlapLatent);
        Assert.Throws<ArgumentException>(() => new TiledVaeOptions { OverlapFactor = 0.7 }.Validate());
        Assert.Throws<ArgumentException>(() => new TiledVaeOptions { TileSampleSize = 100 }.Validate());
    }

    [Fact]
    public void Decode_with_policy_dispatches()
    {
        using var scope = NewDisposeScope();
        using var dec = new ConvDecoder(1);
        using var _ = no_grad();
        var z = randn(1, 4, 40, 57, generator: new Generator(4));
        var whole = dec.forward(z);
        Parity.AssertEqual(TiledVae.DecodeWithPolicy(dec.forward, z, VaeTiling.Off, Small), whole, "off");
        Assert.False(Parity.Same(TiledVae.DecodeWithPolicy(dec.forward, z, VaeTiling.On, Small), whole));
    }
}
