using SelfCascade.Cascade;
using SelfCascade.IO;
using SelfCascade.Models.Vae;
using SelfCascade.Tests.Support;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Cascade;

/// <summary>
/// The default tiled decode/encode against diffusers 0.28.2's own <c>AutoencoderKL.enable_tiling()</c> output on the
/// fixtures' tiny VAE (tests/reference/tiled-vae, made by make_tiled_vae.py): non-square inputs, odd tile counts,
/// short last tiles, batch 2, diffusers' default tile size for this VAE (its sample_size, 32 px) and a smaller one.
/// </summary>
public sealed class TiledVaeParityTests : IDisposable
{
    private readonly AutoencoderKL _vae;
    private readonly SafeTensorsFile _ref;

    public TiledVaeParityTests()
    {
        TorchSetup.Ensure();
        _vae = AutoencoderKL.FromPretrained(Fixtures.ParityPath("models", "vae_tiny"));
        _ref = SafeTensorsFile.Open(Path.Combine(Fixtures.RepoRoot, "tests", "reference", "tiled-vae", "tiled_vae.safetensors"));
    }

    public void Dispose()
    {
        _vae.Dispose();
        _ref.Dispose();
    }

    private static TiledVaeOptions Options(int tileSample) => new() { ScaleFactor = 2, TileSampleSize = tileSample };

    private Tensor EncodeMoments(Tensor x)
    {
        using var p = _vae.Encode(x);
        return cat([p.Mean, p.LogVar], 1);
    }

    [Theory]
    [InlineData("decode_a", 32, 4, 3)] // latent 37x29: rows 0,12,24,36 (the last 1 latent high), columns 0,12,24
    [InlineData("decode_b", 24, 3, 4)] // batch 2, latent 20x31, 12-latent tiles: stride 9
    public void Tiled_decode_matches_diffusers(string name, int tileSample, int tileRows, int tileCols)
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var z = _ref.Read(name + "_in");
        int calls = 0;
        var tiled = TiledVae.Decode(t => { calls++; return _vae.Decode(t); }, z, Options(tileSample));
        Assert.Equal(tileRows * tileCols, calls);
        Parity.AssertClose(tiled, _ref.Read(name + "_tiled"), $"{name} tiled decode");
        // The reference really is tiled: far from the untiled decode of this (global-attention, GroupNorm) VAE.
        var whole = _ref.Read(name + "_whole");
        Parity.AssertClose(_vae.Decode(z), whole, $"{name} untiled decode");
        Assert.True(Parity.MaxAbsDiff(tiled, whole) > 0.1);
    }

    [Theory]
    [InlineData("encode_a", 32, 4, 3)] // image 78x54: rows 0,24,48,72 (the last 6 px), columns 0,24,48
    [InlineData("encode_b", 24, 4, 5)] // image 60x80, 24-px tiles: stride 18 px
    public void Tiled_encode_matches_diffusers(string name, int tileSample, int tileRows, int tileCols)
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var x = _ref.Read(name + "_in");
        int calls = 0;
        var tiled = TiledVae.Encode(t => { calls++; return EncodeMoments(t); }, x, Options(tileSample));
        Assert.Equal(tileRows * tileCols, calls);
        Parity.AssertClose(tiled, _ref.Read(name + "_tiled"), $"{name} tiled encode");
        Assert.True(Parity.MaxAbsDiff(tiled, _ref.Read(name + "_whole")) > 0.1);
    }

    [Fact]
    public void Pipeline_default_tiles_are_the_vae_sample_size_as_in_diffusers()
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        // diffusers' enable_tiling() tiles at the VAE config's sample_size (32 px here, 512 for SD 1.5, 1024 for SDXL).
        Assert.Equal(32, _vae.Config.SampleSize);
        var z = _ref.Read("decode_a_in");
        var viaPolicy = TiledVae.DecodeWithPolicy(_vae.Decode, z, VaeTiling.On, Options(_vae.Config.SampleSize!.Value));
        Parity.AssertClose(viaPolicy, _ref.Read("decode_a_tiled"), "decode_a via the On policy");
    }

    [Fact]
    public void Inconsistent_diffusers_tile_sizes_are_refused()
    {
        // 20 px / 10 latents: stride int(7.5) = 7 latents = 14 px but row_limit = 20 - int(5) = 15 px; diffusers
        // would return an image one pixel too large per tile. Refused with a message instead.
        var e = Assert.Throws<ArgumentException>(() => Options(20).Validate());
        Assert.Contains("tile", e.Message);
        Options(24).Validate();
        (Options(20) with { Layout = VaeTileLayout.Even }).Validate();
    }
}
