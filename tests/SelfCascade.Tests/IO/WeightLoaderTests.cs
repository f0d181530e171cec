using System.Text.Json;
using SelfCascade.IO;
using SelfCascade.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Tests.IO;

public sealed class WeightLoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-wl-").FullName;

    public WeightLoaderTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>A small network with nested names like diffusers' (`blocks.0.proj.weight`, a buffer).</summary>
    private sealed class Tiny : nn.Module<Tensor, Tensor>, ILegacyKeyMap
    {
        private readonly Linear conv_in;
        private readonly ModuleList<Linear> blocks;

        public Tiny() : base("Tiny")
        {
            conv_in = nn.Linear(4, 8);
            blocks = nn.ModuleList(nn.Linear(8, 8), nn.Linear(8, 3, hasBias: false));
            register_buffer("scale", torch.ones(3));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => blocks[1].forward(blocks[0].forward(conv_in.forward(x)));

        public string? MapLegacyKey(string key) => key.StartsWith("old_in.") ? "conv_in." + key[7..] : null;
        public bool IsIgnorableKey(string key) => key == "position_ids";
    }

    private static Dictionary<string, Tensor> RandomState(Tiny m, ScalarType dtype, int seed)
    {
        using var g = new Generator((ulong)seed);
        return m.state_dict().ToDictionary(kv => kv.Key, kv => torch.randn(kv.Value.shape, generator: g).to(dtype));
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    public void LoadsAnyFloatDTypeIntoFloat32AndBack(ScalarType fileType)
    {
        using var m = new Tiny();
        var state = RandomState(m, fileType, 1);
        var path = Path.Combine(_dir, "w.safetensors");
        SafeTensorsWriter.Save(path, state);
        var report = WeightLoader.Load(m, [path]);
        Assert.True(report.Ok, report.Describe());
        Assert.Equal(state.Count, report.DTypeCounts[SafeTensorsDTypes.FromScalarType(fileType)]);
        foreach (var (k, v) in m.state_dict())
        {
            Assert.Equal(ScalarType.Float32, v.dtype);
            using var expected = state[k].to(ScalarType.Float32);
            Assert.True(Parity.Same(v, expected), k);
        }
        // And back: an fp16 network reading the fp32 file written from it.
        var back = Path.Combine(_dir, "back.safetensors");
        SafeTensorsWriter.Save(back, m.state_dict());
        using var m16 = new Tiny();
        m16.to(ScalarType.Float16);
        WeightLoader.Load(m16, [back]);
        foreach (var (k, v) in m16.state_dict())
        {
            Assert.Equal(ScalarType.Float16, v.dtype);
            using var expected = m.state_dict()[k].to(ScalarType.Float16);
            Assert.True(Parity.Same(v, expected), k);
        }
        foreach (var t in state.Values) t.Dispose();
    }

    [Fact]
    public void ShardedCheckpointWithIndexLoads()
    {
        using var m = new Tiny();
        var state = RandomState(m, ScalarType.Float32, 2);
        var keys = state.Keys.OrderBy(k => k).ToList();
        var shard1 = keys.Take(2).ToDictionary(k => k, k => state[k]);
        var shard2 = keys.Skip(2).ToDictionary(k => k, k => state[k]);
        SafeTensorsWriter.Save(Path.Combine(_dir, "diffusion_pytorch_model-00001-of-00002.safetensors"), shard1);
        SafeTensorsWriter.Save(Path.Combine(_dir, "diffusion_pytorch_model-00002-of-00002.safetensors"), shard2);
        var index = new { metadata = new { total_size = 0 }, weight_map = keys.ToDictionary(k => k, k => shard1.ContainsKey(k) ? "diffusion_pytorch_model-00001-of-00002.safetensors" : "diffusion_pytorch_model-00002-of-00002.safetensors") };
        File.WriteAllText(Path.Combine(_dir, "diffusion_pytorch_model.safetensors.index.json"), JsonSerializer.Serialize(index));
        var files = WeightLoader.ResolveWeightFiles(_dir);
        Assert.Equal(2, files.Count);
        Assert.True(WeightLoader.Load(m, files).Ok);
        foreach (var (k, v) in m.state_dict()) Assert.True(Parity.Same(v, state[k]), k);
    }

    [Fact]
    public void VariantFilesAreFound()
    {
        using var m = new Tiny();
        var state = RandomState(m, ScalarType.Float16, 3);
        SafeTensorsWriter.Save(Path.Combine(_dir, "diffusion_pytorch_model.fp16.safetensors"), state);
        Assert.EndsWith("diffusion_pytorch_model.fp16.safetensors", WeightLoader.ResolveWeightFiles(_dir, "fp16").Single());
        // With no variant asked and only one variant file present, that file is used.
        Assert.EndsWith("diffusion_pytorch_model.fp16.safetensors", WeightLoader.ResolveWeightFiles(_dir).Single());
        var e = Assert.Throws<FileNotFoundException>(() => WeightLoader.ResolveWeightFiles(_dir, "bf16"));
        Assert.Contains("bf16", e.Message);
    }

    [Fact]
    public void MissingExtraAndMisShapedKeysAreAllReported()
    {
        using var m = new Tiny();
        var state = RandomState(m, ScalarType.Float32, 4);
        state.Remove("blocks.0.bias", out var removed);
        removed!.Dispose();
        state["blocks.7.weight"] = torch.zeros(2, 2);
        state["conv_in.weight"].Dispose();
        state["conv_in.weight"] = torch.zeros(8, 5);
        var path = Path.Combine(_dir, "bad.safetensors");
        SafeTensorsWriter.Save(path, state);
        using var before = m.state_dict()["blocks.1.weight"].clone();
        var e = Assert.Throws<WeightLoadException>(() => WeightLoader.Load(m, [path]));
        Assert.Equal(["blocks.0.bias"], e.Report.Missing);
        Assert.Equal(["blocks.7.weight"], e.Report.Unexpected);
        Assert.Equal("conv_in.weight", Assert.Single(e.Report.Mismatched).Name);
        Assert.Contains("missing: blocks.0.bias", e.Message);
        Assert.Contains("unexpected: blocks.7.weight", e.Message);
        Assert.Contains("conv_in.weight: expected [8,4], file has [8,5]", e.Message);
        // Nothing was loaded: a failed strict load leaves the network as it was.
        Assert.True(Parity.Same(before, m.state_dict()["blocks.1.weight"]));
    }

    [Fact]
    public void LegacyKeysAreMappedAndIgnorableKeysDropped()
    {
        using var m = new Tiny();
        var state = RandomState(m, ScalarType.Float32, 5);
        state.Remove("conv_in.weight", out var w);
        state["old_in.weight"] = w!;
        state["position_ids"] = torch.arange(3);
        var path = Path.Combine(_dir, "legacy.safetensors");
        SafeTensorsWriter.Save(path, state);
        var report = WeightLoader.Load(m, [path]);
        Assert.True(report.Ok, report.Describe());
        Assert.True(Parity.Same(m.state_dict()["conv_in.weight"], w!));
    }

    [Fact]
    public void NoWeightsGivesAClearError()
    {
        File.WriteAllText(Path.Combine(_dir, "pytorch_model.bin"), "x");
        var e = Assert.Throws<FileNotFoundException>(() => WeightLoader.ResolveWeightFiles(_dir));
        Assert.Contains("only safetensors", e.Message);
    }
}
