using SelfCascade.Cascade;
using SelfCascade.Checkpoints;
using SelfCascade.Checkpoints.Conversion;
using SelfCascade.Checkpoints.SingleFile;
using SelfCascade.IO;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Checkpoints;

/// <summary>
/// Single files made from the tiny fixture models the way diffusers' conversion scripts make them (checked against
/// tests/reference/single-file) load into the same networks as the folders: the same image bytes for generate and a
/// 2-stage cascade (SD 2.x-style with OpenCLIP, SDXL), the same weights for SD 1.x, fp16 files, and an exact round trip.
/// </summary>
public sealed class SingleFileLoadingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-single-").FullName;
    public SingleFileLoadingTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    private const string Prompt = "a photo of a red circle";

    private (string Folder, string File) Make(string name, ScalarType? dtype = null)
    {
        var folder = SingleFileReference.BuildFolder(name, Path.Combine(_dir, name));
        var file = SingleFileReference.WriteSingleFile(folder, Path.Combine(_dir, name + (dtype is null ? "" : ".fp16") + ".safetensors"), dtype);
        return (folder, file);
    }

    [Theory]
    [InlineData("sd_tiny")]
    [InlineData("sd1_tiny")]
    [InlineData("sdxl_tiny")]
    public void OurSingleFileIsWhatDiffusersScriptsWrite(string name)
    {
        var (folder, file) = Make(name);
        var problems = SingleFileReference.Compare(file, SingleFileReference.Manifest(name, "fp32"));
        var half = SingleFileReference.WriteSingleFile(folder, Path.Combine(_dir, name + ".fp16.safetensors"), ScalarType.Float16);
        problems.AddRange(SingleFileReference.Compare(half, SingleFileReference.Manifest(name, "fp16")).Select(p => "fp16 " + p));
        Assert.True(problems.Count == 0, $"{problems.Count} differences from diffusers' conversion:\n" + string.Join("\n", problems.Take(30)));
    }

    [Theory]
    [InlineData("sd_tiny", 7.5, "")]
    [InlineData("sdxl_tiny", 5.0, null)]
    public void SingleFileGivesTheFolderImageBytes(string name, double guidance, string? negative)
    {
        var (folder, file) = Make(name);
        using var fromFolder = StableDiffusionPipeline.FromPretrained(folder);
        using var fromFile = StableDiffusionPipeline.FromPretrained(file, new PipelineOptions { ConfigDir = folder });
        Assert.Equal(fromFolder.Family, fromFile.Family);
        var request = new GenerationRequest(Prompt) { NegativePrompt = negative, Steps = 10, Guidance = guidance, Width = 32, Height = 32, Seed = 0 };
        using (var a = fromFolder.Generate(request))
        using (var b = fromFile.Generate(request))
            Assert.Equal(a.Images[0].Pixels, b.Images[0].Pixels);
        var cascade = new CascadeRequest
        {
            Request = new GenerationRequest(Prompt) { NegativePrompt = negative, Steps = 10, Guidance = guidance, Seed = 0, Width = 64, Height = 64 },
            BaseSize = new PixelSize(32, 32), PivotStrength = 0.7,
        };
        using var c = CascadeGenerator.Generate(fromFolder, cascade);
        using var d = CascadeGenerator.Generate(fromFile, cascade);
        Assert.Equal(2, c.Stages.Count);
        Assert.Equal(c.Images[0].Pixels, d.Images[0].Pixels);
    }

    /// <summary>
    /// A `.ckpt` as CompVis/Stability ship them ({"state_dict": {...}, "global_step": N}, torch.save zip format) is
    /// read through the allow-list unpickler and gives the same pixels as the safetensors file with the same tensors.
    /// </summary>
    [Theory]
    [InlineData("sd_tiny")]
    [InlineData("sdxl_tiny")]
    public void CkptGivesTheSafetensorsImageBytes(string name)
    {
        var (folder, file) = Make(name);
        var ckpt = Path.Combine(_dir, name + ".ckpt");
        var inner = new System.Collections.Hashtable();
        using (var st = SafeTensorsFile.Open(file))
            foreach (var key in st.Entries.Keys) inner[key] = st.Read(key);
        TorchSharp.PyBridge.PyTorchPickler.PickleStateDict(ckpt, new System.Collections.Hashtable { ["state_dict"] = inner, ["global_step"] = 875000 });
        foreach (var t in inner.Values) ((Tensor)t!).Dispose();

        using var fromSafetensors = StableDiffusionPipeline.FromPretrained(file, new PipelineOptions { ConfigDir = folder });
        using var fromCkpt = StableDiffusionPipeline.FromPretrained(ckpt, new PipelineOptions { ConfigDir = folder });
        var request = new GenerationRequest(Prompt) { Steps = 10, Width = 32, Height = 32, Seed = 0 };
        using var a = fromSafetensors.Generate(request);
        using var b = fromCkpt.Generate(request);
        Assert.Equal(a.Images[0].Pixels, b.Images[0].Pixels);
    }

    [Theory]
    [InlineData("sd1_tiny")]
    [InlineData("sd_tiny")]
    [InlineData("sdxl_tiny")]
    public void SingleFileLoadsExactlyTheFolderWeights(string name)
    {
        var (folder, file) = Make(name);
        using var a = StableDiffusionPipeline.FromPretrained(folder);
        using var b = StableDiffusionPipeline.FromPretrained(file, new PipelineOptions { ConfigDir = folder });
        var diffs = new List<string>();
        Diff("unet", a.Unet, b.Unet, diffs);
        Diff("vae", a.Vae!, b.Vae!, diffs);
        for (int i = 0; i < a.Prompts.TextEncoders.Count; i++) Diff($"text_encoder[{i}]", a.Prompts.TextEncoders[i], b.Prompts.TextEncoders[i], diffs);
        Assert.True(diffs.Count == 0, string.Join("\n", diffs.Take(20)));
        // The text encoders (OpenCLIP's fused q/k/v for SD 2.x and SDXL) give the same outputs.
        using var ids = torch.tensor(new long[] { 49406, 320, 1125, 539, 320, 736, 7117, 49407 }).unsqueeze(0);
        for (int i = 0; i < a.Prompts.TextEncoders.Count; i++)
        {
            using var oa = a.Prompts.TextEncoders[i].Forward(ids);
            using var ob = b.Prompts.TextEncoders[i].Forward(ids);
            Assert.True(oa.LastHiddenState.equal(ob.LastHiddenState).all().item<bool>(), $"text encoder {i}");
        }
    }

    internal static void Diff(string what, nn.Module a, nn.Module b, List<string> diffs)
    {
        var sb = b.state_dict();
        foreach (var (k, t) in a.state_dict())
        {
            if (!sb.TryGetValue(k, out var u)) { diffs.Add($"{what}.{k} missing"); continue; }
            if (!t.shape.SequenceEqual(u.shape) || !t.equal(u).all().item<bool>()) diffs.Add($"{what}.{k} differs");
        }
    }

    [Theory]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    public void HalfPrecisionFileLoadsAsTheRoundedWeights(ScalarType fileType)
    {
        var folder = SingleFileReference.BuildFolder("sd_tiny", Path.Combine(_dir, "sd_tiny"));
        var file = SingleFileReference.WriteSingleFile(folder, Path.Combine(_dir, $"sd_tiny.{fileType}.safetensors"), fileType);
        using (var f = SafeTensorsFile.Open(file)) Assert.All(f.Entries.Values, e => Assert.Equal(SafeTensorsDTypes.FromScalarType(fileType), e.DType));
        using var a = StableDiffusionPipeline.FromPretrained(folder);
        using var b = StableDiffusionPipeline.FromPretrained(file, new PipelineOptions { ConfigDir = folder });
        foreach (var (x, y, what) in new (nn.Module, nn.Module, string)[] { (a.Unet, b.Unet, "unet"), (a.Vae!, b.Vae!, "vae"), (a.Prompts.TextEncoders[0], b.Prompts.TextEncoders[0], "te") })
        {
            var sb = y.state_dict();
            foreach (var (k, t) in x.state_dict())
            {
                using var rounded = t.to(fileType).to(ScalarType.Float32);
                Assert.True(sb[k].dtype == ScalarType.Float32 && rounded.equal(sb[k]).all().item<bool>(), $"{what}.{k}");
            }
        }
    }

    [Theory]
    [InlineData("sd_tiny")]
    [InlineData("sdxl_tiny")]
    public void SingleToFolderToSingleIsExact(string name)
    {
        var (source, file) = Make(name);
        var folder = Path.Combine(_dir, name + "-converted");
        using (var ck = SingleFileCheckpoint.Open(file, new SingleFileOptions { ConfigDir = source })) CheckpointConverter.ToDiffusersFolder(ck, folder);
        var back = Path.Combine(_dir, name + "-back.safetensors");
        using (var fc = FolderComponents.Open(folder)) CheckpointConverter.ToSingleFile(fc, back);
        using var x = SafeTensorsFile.Open(file);
        using var y = SafeTensorsFile.Open(back);
        Assert.Equal(x.Entries.Keys.Order(), y.Entries.Keys.Order());
        foreach (var k in x.Entries.Keys)
        {
            using var t = x.Read(k);
            using var u = y.Read(k);
            Assert.True(t.dtype == u.dtype && t.shape.SequenceEqual(u.shape) && t.equal(u).all().item<bool>(), k);
        }
        // The converted folder is a working diffusers folder with the original folder's weights.
        using var p0 = StableDiffusionPipeline.FromPretrained(source);
        using var p1 = StableDiffusionPipeline.FromPretrained(folder);
        Assert.Equal(SingleFileLayout.Detect(x).Family, p1.Family);
        var diffs = new List<string>();
        Diff("unet", p0.Unet, p1.Unet, diffs);
        Diff("vae", p0.Vae!, p1.Vae!, diffs);
        for (int i = 0; i < p0.Prompts.TextEncoders.Count; i++) Diff($"text_encoder[{i}]", p0.Prompts.TextEncoders[i], p1.Prompts.TextEncoders[i], diffs);
        Assert.True(diffs.Count == 0, string.Join("\n", diffs.Take(20)));
    }
}
