using System.Collections;
using System.CommandLine;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Cli;
using SelfCascade.Cli.Commands;
using SelfCascade.Models.Unet;
using SelfCascade.Tests.Support;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Upsamplers;

/// <summary>Checkpoint folders (round trip, atomic replace, every error case) and the released .pth import.</summary>
public sealed class UpsamplerCheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-upsck-").FullName;
    private readonly UNet2DConditionModel _unet;

    public UpsamplerCheckpointTests()
    {
        TorchSetup.Ensure();
        _unet = UNet2DConditionModel.FromPretrained(Fixtures.ParityPath("models", "unet_sd2_style"));
    }

    public void Dispose()
    {
        _unet.Dispose();
        Directory.Delete(_dir, true);
    }

    private Tensor ForwardWith(FeatureUpsamplerSet set)
    {
        using var g = new Generator(9);
        using var x = randn([2, 4, 16, 16], generator: g);
        using var lr = randn([2, 4, 8, 8], generator: g);
        using var states = randn([2, 77, 32], generator: g);
        using var t = tensor(321L);
        using var mode = inference_mode();
        using var hook = set.CreateHook(_unet, lr, states);
        return _unet.Forward(x, t, states, null, hook.Options);
    }

    [Theory]
    [InlineData(UpsamplerVariant.Full)]
    [InlineData(UpsamplerVariant.Lite)]
    public void SaveLoadRoundTripGivesTheSameOutputs(UpsamplerVariant variant)
    {
        using var set = FeatureUpsamplerSet.Create(variant, _unet, stageScale: 2.0);
        UpsamplerTestSupport.Perturb(set, 21);
        var dir = Path.Combine(_dir, "ck");
        set.Save(dir, trainingSteps: 1234);
        Assert.True(File.Exists(Path.Combine(dir, "config.json")) && File.Exists(Path.Combine(dir, "upsamplers.safetensors")));
        using var loaded = FeatureUpsamplerSet.Load(dir, _unet);
        Assert.Equal(variant, loaded.Variant);
        Assert.Equal(set.Points, loaded.Points);
        Assert.Equal(1234, loaded.Config.TrainingSteps);
        Assert.Equal(2.0, loaded.Config.StageScale);
        Assert.Equal("custom", loaded.Config.UnetFamily);
        Assert.True(UpsamplerTestSupport.SameState(set, loaded));
        using var a = ForwardWith(set);
        using var b = ForwardWith(loaded);
        Assert.True(a.Same(b));
    }

    [Fact]
    public void SaveReplacesAnOldCheckpointAtomically()
    {
        var dir = Path.Combine(_dir, "ck");
        using var first = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, _unet);
        first.Save(dir, 1);
        using var second = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, _unet);
        UpsamplerTestSupport.Perturb(second, 2);
        second.Save(dir, 2);
        Assert.Equal(["ck"], Directory.GetDirectories(_dir).Select(Path.GetFileName));
        using var loaded = FeatureUpsamplerSet.Load(dir, _unet);
        Assert.Equal(2, loaded.Config.TrainingSteps);
        Assert.True(UpsamplerTestSupport.SameState(second, loaded));
    }

    [Fact]
    public void FromCheckpointsBuildsAnInjectorWithOneSetPerStage()
    {
        using var a = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, _unet, stageScale: 2);
        using var b = FeatureUpsamplerSet.Create(UpsamplerVariant.Full, _unet, stageScale: 2);
        a.Save(Path.Combine(_dir, "a"));
        b.Save(Path.Combine(_dir, "b"));
        using var injector = FeatureUpsamplerInjector.FromCheckpoints([Path.Combine(_dir, "a"), Path.Combine(_dir, "b")], _unet);
        Assert.Equal(UpsamplerVariant.Lite, injector.SetForStage(1).Variant);
        Assert.Equal(UpsamplerVariant.Full, injector.SetForStage(2).Variant);
        Assert.Equal(UpsamplerVariant.Full, injector.SetForStage(3).Variant);
    }

    [Fact]
    public void MissingFilesAreClearErrors()
    {
        var dir = Path.Combine(_dir, "ck");
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, _unet);
        var e0 = Assert.Throws<UpsamplerCheckpointException>(() => FeatureUpsamplerSet.Load(dir, _unet));
        Assert.Contains("folder not found", e0.Message);
        set.Save(dir);
        File.Delete(Path.Combine(dir, "upsamplers.safetensors"));
        var e1 = Assert.Throws<UpsamplerCheckpointException>(() => FeatureUpsamplerSet.Load(dir, _unet));
        Assert.Contains("upsamplers.safetensors is missing", e1.Message);
        File.Delete(Path.Combine(dir, "config.json"));
        var e2 = Assert.Throws<UpsamplerCheckpointException>(() => FeatureUpsamplerSet.Load(dir, _unet));
        Assert.Contains("config.json is missing", e2.Message);
    }

    [Fact]
    public void CorruptCheckpointsAreClearErrors()
    {
        var dir = Path.Combine(_dir, "ck");
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, _unet);
        set.Save(dir);
        var weights = Path.Combine(dir, "upsamplers.safetensors");
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length / 2)]);
        var e1 = Assert.Throws<UpsamplerCheckpointException>(() => FeatureUpsamplerSet.Load(dir, _unet));
        Assert.Contains("upsamplers.safetensors is unusable", e1.Message);

        File.WriteAllText(Path.Combine(dir, "config.json"), "{ \"format\": 1, \"variant\": \"huge\" ");
        var e2 = Assert.Throws<UpsamplerCheckpointException>(() => FeatureUpsamplerSet.Load(dir, _unet));
        Assert.Contains("config.json is invalid", e2.Message);
    }

    [Fact]
    public void WeightsOfAnotherLayoutAreNamed()
    {
        // config says lite at the default points; the weights are those of a full set: every key is named.
        var dir = Path.Combine(_dir, "ck");
        using var lite = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, _unet);
        lite.Save(dir);
        using var full = FeatureUpsamplerSet.Create(UpsamplerVariant.Full, _unet);
        SelfCascade.IO.SafeTensorsWriter.Save(Path.Combine(dir, "upsamplers.safetensors"), full.state_dict());
        var e = Assert.Throws<UpsamplerCheckpointException>(() => FeatureUpsamplerSet.Load(dir, _unet));
        Assert.Contains("feature_upsampler0.modulation.weight", e.Message);
        Assert.Contains("feature_upsampler0.gate", e.Message);
    }

    [Fact]
    public void CheckpointForAnotherModelShapeIsRejected()
    {
        var dir = Path.Combine(_dir, "ck");
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, _unet);
        set.Save(dir);
        var e = Assert.Throws<UpsamplerCheckpointException>(() => FeatureUpsamplerSet.Load(dir, ArchConfigs.Unet("unet_sdxl.json"), META));
        Assert.Contains("does not fit this UNet", e.Message);
        Assert.Contains("point down0: upsampler has 32 channels, the UNet has 320", e.Message);
        Assert.Contains("time embedding width: upsamplers 128, the UNet 1280", e.Message);
    }

    // ---- the released format ----

    /// <summary>Writes a torch.save-format pickle like the released `upsampler_only.pth`: {"state_dict": {"unet.feature_upsamplerK…": tensor}, "epoch": 3}.</summary>
    private static void WriteReleasedPth(string path, FeatureUpsamplerSet releasedLike)
    {
        var inner = new Hashtable();
        foreach (var (name, t) in releasedLike.state_dict())
            if (!name.EndsWith(".gate", StringComparison.Ordinal)) inner["unet." + name] = t.detach().clone();
        var top = new Hashtable { ["state_dict"] = inner, ["epoch"] = 3 };
        PyTorchPickler.PickleStateDict(path, top);
    }

    [Fact]
    public void ReleasedPthConvertsToTheFullVariant()
    {
        using var released = FeatureUpsamplerSet.Create(UpsamplerVariant.Full, _unet);
        UpsamplerTestSupport.Perturb(released, 33);
        var pth = Path.Combine(_dir, "upsampler_only.pth");
        WriteReleasedPth(pth, released);
        using (var zip = System.IO.Compression.ZipFile.OpenRead(pth))
            Assert.Contains(zip.Entries, e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal));

        using var imported = ReleasedUpsamplerImporter.Import(pth, _unet.Config);
        Assert.Equal(UpsamplerVariant.Full, imported.Variant);
        Assert.Equal(["down0", "down1", "down2", "mid"], imported.Points.Select(p => p.ToString()));
        var src = released.state_dict();
        foreach (var (name, t) in imported.state_dict())
        {
            if (name.EndsWith(".gate", StringComparison.Ordinal)) Assert.Equal(1.0f, t.min().item<float>());
            else Assert.True(t.Same(src[name]), name);
        }
    }

    [Fact]
    public void ConvertUpsamplersCommandWritesALoadableCheckpoint()
    {
        using var released = FeatureUpsamplerSet.Create(UpsamplerVariant.Full, _unet);
        UpsamplerTestSupport.Perturb(released, 34);
        var pth = Path.Combine(_dir, "upsampler_only.pth");
        WriteReleasedPth(pth, released);
        var model = TinyModelFolders.BuildSd(Path.Combine(_dir, "model"));
        var outDir = Path.Combine(_dir, "converted");
        var o = new StringWriter();
        var err = new StringWriter();
        var console = new CliConsole(o, err, false);
        var root = new RootCommand("test") { CliApp.LibTorchOption, ConvertUpsamplersCommand.Create(console) };
        int code = root.Parse(["convert-upsamplers", "--in", pth, "--model", model, "--out", outDir]).Invoke(
            new InvocationConfiguration { Output = o, Error = err, EnableDefaultExceptionHandler = false });
        Assert.True(code == 0, err.ToString());
        Assert.Contains("full upsamplers at down0, down1, down2, mid", o.ToString());
        using var loaded = FeatureUpsamplerSet.Load(outDir, _unet);
        Assert.Equal(2.0, loaded.Config.StageScale);
        Assert.Equal(1.0f, ((FullFeatureUpsampler)loaded.Upsampler(InjectionPoint.Mid)).Gate.min().item<float>());

        // A checkpoint for another UNet shape is a clear error, not a crash.
        var sdxlish = Path.Combine(_dir, "other");
        Directory.CreateDirectory(Path.Combine(sdxlish, "unet"));
        File.WriteAllText(Path.Combine(sdxlish, "unet", "config.json"), StateDictShapes.ConfigJson(StateDictShapes.Load("unet_sdxl.json")));
        var e = Assert.Throws<UpsamplerCheckpointException>(() => ReleasedUpsamplerImporter.Import(pth,
            UNet2DConditionConfig.Load(Path.Combine(sdxlish, "unet", "config.json"))));
        Assert.Contains("feature_upsampler0 (down0) has 32 channels, this UNet has 320", e.Message);
    }

    [Fact]
    public void UnreadablePthIsAClearError()
    {
        var pth = Path.Combine(_dir, "bad.pth");
        File.WriteAllBytes(pth, [1, 2, 3, 4, 5]);
        var e = Assert.Throws<UpsamplerCheckpointException>(() => ReleasedUpsamplerImporter.Import(pth, _unet.Config));
        Assert.Contains("not a readable PyTorch checkpoint", e.Message);
        var e2 = Assert.Throws<UpsamplerCheckpointException>(() => ReleasedUpsamplerImporter.Import(Path.Combine(_dir, "none.pth"), _unet.Config));
        Assert.Contains("file not found", e2.Message);
    }
}
