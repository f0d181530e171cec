using SelfCascade.Cascade;
using SelfCascade.Offload;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Execution;

/// <summary>
/// Memory modes on the CPU. What this proves: with model or sequential offload the pipeline runs its move
/// machinery (a move in and out per component use, or per leaf layer per forward; counted) and the image is
/// bit-identical to the one without offload, and the weights end on the storage device. What it cannot prove here:
/// that data survives a real CPU-GPU round trip (both devices are the CPU, so each move is a no-op) or the memory
/// saved; those need a GPU run.
/// </summary>
public sealed class OffloadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-offload-").FullName;
    public OffloadTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    private static readonly GenerationRequest Request = new("a red circle") { NegativePrompt = "", Steps = 3, Guidance = 7.5, Width = 32, Height = 32, Seed = 0 };

    [Theory]
    [InlineData(OffloadMode.Model)]
    [InlineData(OffloadMode.Sequential)]
    public void SameImageWithAndWithoutOffload(OffloadMode mode)
    {
        var folder = TinyModelFolders.BuildSd(Path.Combine(_dir, "sd"));
        using var plain = StableDiffusionPipeline.FromPretrained(folder);
        using var offloaded = StableDiffusionPipeline.FromPretrained(folder, new PipelineOptions { Offload = mode });
        using var a = plain.Generate(Request);
        using var b = offloaded.Generate(Request);
        Assert.Equal(0f, (a.Latents - b.Latents).abs().max().item<float>()); // bit-identical
        Assert.Equal(a.Images[0].Pixels, b.Images[0].Pixels);
        var o = offloaded.Offloader;
        Assert.Equal(mode, o.Mode);
        Assert.Equal(o.MovesToExecution, o.MovesToStorage); // every move in is undone
        if (mode == OffloadMode.Model)
            Assert.Equal(3, o.MovesToExecution); // text encoder once, UNet once (the whole loop), VAE once
        else
        {
            // Every leaf layer with weights moves in and out around each of its calls: far more than one per component.
            int leaves = offloaded.Unet.modules().Count(m => !m.children().Any() && m.parameters(false).Any());
            Assert.True(o.MovesToExecution >= 3 * leaves, $"{o.MovesToExecution} moves for {leaves} UNet leaves x 3 steps");
        }
        Assert.All(offloaded.Unet.parameters(), p => Assert.Equal(DeviceType.CPU, p.device.type));
        Assert.Equal(0, plain.Offloader.MovesToExecution);
    }

    [Fact]
    public void AutoTilingFollowsFreeDeviceMemoryWhenKnown()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(TinyModelFolders.BuildSd(Path.Combine(_dir, "sd")));
        long side = 2048 / pipe.VaeScaleFactor;
        Assert.True(pipe.ShouldTileDecode(VaeTiling.Auto, side, side)); // CPU: the pixel rule (> 1024x1024 px)
        pipe.FreeDeviceMemory = () => 100L << 30;
        Assert.False(pipe.ShouldTileDecode(VaeTiling.Auto, side, side)); // a big GPU: fits untiled
        long need = VaeMemoryEstimate.UntiledDecodeBytes(2048, 2048, 1, 4);
        pipe.FreeDeviceMemory = () => need; // 90 % of it usable: does not fit
        Assert.True(pipe.ShouldTileDecode(VaeTiling.Auto, side, side));
        Assert.False(pipe.ShouldTileDecode(VaeTiling.Off, side, side));
        pipe.FreeDeviceMemory = () => 1L << 20;
        Assert.False(pipe.ShouldTileDecode(VaeTiling.Auto, 8, 8)); // one tile covers it: nothing to tile
    }
}
