using SelfCascade.IO;
using SelfCascade.Models.Vae;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Vae;

/// <summary>Legacy attention names, 1x1-conv shaped attention weights, leaks and half precision for the VAE.</summary>
public class AutoencoderKLLoadingTests
{
    public AutoencoderKLLoadingTests() => TorchSetup.Ensure();

    private static string Dir => Fixtures.ParityPath("models", "vae_tiny");

    [Fact]
    public void LoadsLegacyAttentionNamesAndConvShapedWeights()
    {
        var tmp = Directory.CreateTempSubdirectory("legacy-vae-");
        try
        {
            File.Copy(Path.Combine(Dir, "config.json"), Path.Combine(tmp.FullName, "config.json"));
            var renamed = new Dictionary<string, Tensor>();
            int legacy = 0;
            using (var scope = NewDisposeScope())
            {
                using var f = SafeTensorsFile.Open(Path.Combine(Dir, "diffusion_pytorch_model.safetensors"));
                foreach (var key in f.Entries.Keys)
                {
                    var t = f.Read(key);
                    var name = key.Replace(".to_q.", ".query.").Replace(".to_k.", ".key.").Replace(".to_v.", ".value.").Replace(".to_out.0.", ".proj_attn.");
                    if (name != key)
                    {
                        legacy++;
                        // Some old checkpoints store the projections as 1x1 convolutions (C, C, 1, 1).
                        if (t.dim() == 2 && name.Contains(".query.")) t = t.reshape(t.shape[0], t.shape[1], 1, 1);
                    }
                    renamed[name] = t.DetachFromDisposeScope();
                }
            }
            Assert.Equal(16, legacy);  // encoder and decoder: 4 projections x (weight, bias)
            SafeTensorsWriter.Save(Path.Combine(tmp.FullName, "diffusion_pytorch_model.safetensors"), renamed);
            foreach (var t in renamed.Values) t.Dispose();

            using var vae = AutoencoderKL.FromPretrained(tmp.FullName);
            using var io = Parity.Open("models", "vae_tiny", "io.safetensors");
            using var s = NewDisposeScope();
            using var _ = inference_mode();
            Parity.AssertClose(vae.Decode(io.Read("latent")), io.Read("decoded"), "decoded with legacy-named weights");
            using var posterior = vae.Encode(io.Read("image"));
            Parity.AssertClose(posterior.Mean, io.Read("posterior_mean"), "posterior_mean with legacy-named weights");
        }
        finally { tmp.Delete(recursive: true); }
    }

    [Fact]
    public void LegacyKeyMapCoversExactlyTheOldAttentionNames()
    {
        var map = (ILegacyKeyMap)AutoencoderKL.FromPretrained(Dir);
        Assert.Equal("encoder.mid_block.attentions.0.to_q.weight", map.MapLegacyKey("encoder.mid_block.attentions.0.query.weight"));
        Assert.Equal("decoder.mid_block.attentions.0.to_k.bias", map.MapLegacyKey("decoder.mid_block.attentions.0.key.bias"));
        Assert.Equal("decoder.mid_block.attentions.0.to_v.weight", map.MapLegacyKey("decoder.mid_block.attentions.0.value.weight"));
        Assert.Equal("encoder.mid_block.attentions.0.to_out.0.bias", map.MapLegacyKey("encoder.mid_block.attentions.0.proj_attn.bias"));
        Assert.Null(map.MapLegacyKey("encoder.mid_block.attentions.0.group_norm.weight"));
        Assert.Null(map.MapLegacyKey("encoder.conv_in.weight"));
        ((IDisposable)map).Dispose();
    }

    [Fact]
    public void RepeatedEncodeDecodeKeepsTheLiveTensorCountFlat()
    {
        using var vae = AutoencoderKL.FromPretrained(Dir);
        using var io = Parity.Open("models", "vae_tiny", "io.safetensors");
        using var inputs = NewDisposeScope();
        using var _ = inference_mode();
        var image = io.Read("image");
        var latent = io.Read("latent");
        void Step()
        {
            using var scope = NewDisposeScope();
            using var g = new Generator(0);
            using (var p = vae.Encode(image)) p.Sample(g);
            vae.Decode(latent);
        }
        Step();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++) Step();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    /// <summary>
    /// bf16 and fp16 decode and encode against diffusers' own bf16 run of the same VAE on the CPU
    /// (<see cref="HalfPrecisionReference"/>: no further from fp32 than diffusers' bf16 is, and, in bf16, that close to
    /// diffusers' bf16 output; fp16 8x tighter).
    /// </summary>
    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void HalfPrecisionVaeMatchesDiffusersHalfPrecision(ScalarType dtype)
    {
        using var vae = AutoencoderKL.FromPretrained(Dir, dtype: dtype);
        using var io = Parity.Open("models", "vae_tiny", "io.safetensors");
        using var reference = HalfPrecisionReference.Open();
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        Parity.AssertClose(reference.Read("vae_decode_fp32"), io.Read("decoded"), "reference fp32 decode = fixture");
        var decoded = vae.Decode(io.Read("latent").to_type(dtype));
        Assert.Equal(dtype, decoded.dtype);
        HalfPrecisionReference.AssertClose(decoded, reference, "vae_decode", dtype);
        using var posterior = vae.Encode(io.Read("image").to_type(dtype));
        Assert.Equal(dtype, posterior.Mean.dtype);
        HalfPrecisionReference.AssertClose(posterior.Mean, reference, "vae_encode_mean", dtype);
    }
}
