using SelfCascade.Pipelines;
using SelfCascade.Runtime;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Execution;

/// <summary>
/// GPU-grade execution, checked on the CPU: no device-to-host read in the code the denoising loop runs (a code-level
/// guard: libtorch's meta device, which would make any read throw at run time, has no conv2d kernel in libtorch 2.10's
/// C++ library, so the loop cannot run there), and half precision where fp16/bf16 are asked for.
/// </summary>
public sealed class DenoiseLoopTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-loop-").FullName;
    public DenoiseLoopTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>Calls that copy device data to the host and wait for it.</summary>
    private static readonly System.Text.RegularExpressions.Regex HostRead = new(
        @"\.item<|\.data<|\bToSingle\(|\bToDouble\(|\bToInt64\(|\bToInt32\(|\bToBoolean\(|\bToHalf\(|\.cpu\(\)|\.to\((torch\.)?CPU\)|ToArray<|\.tolist\(");

    /// <summary>Reads that run once while a scheduler is built or its timesteps are set, never per step.</summary>
    private static readonly (string File, string Method, string Why)[] SetUpReads =
    [
        ("Schedulers/ScheduleMath.cs", "Betas", "the beta table, built in the scheduler's constructor"),
        ("Schedulers/ScheduleMath.cs", "AlphasCumprod", "the alphas_cumprod table, built in the constructor"),
        ("Schedulers/EulerDiscreteScheduler.cs", "ComputeTimesteps", "Karras sigmas in set_timesteps, before the loop"),
    ];

    /// <summary>Everything a denoising step runs: the schedulers, the UNet and its blocks, the feature upsamplers
    /// and their injection, and StableDiffusionPipeline.Denoise itself.</summary>
    private static IEnumerable<string> LoopFiles(string src) =>
        new[] { "Schedulers", "Models/Blocks", "Models/Unet", "Cascade/Upsamplers" }
            .SelectMany(d => Directory.EnumerateFiles(Path.Combine(src, d), "*.cs"))
            .Append(Path.Combine(src, "Cascade", "StageFeatureInjection.cs"))
            .Append(Path.Combine(src, "Pipelines", "StableDiffusionPipeline.cs"));

    private static string SourceRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "src", "SelfCascade", "SelfCascade.csproj"))) return Path.Combine(d.FullName, "src", "SelfCascade");
        throw new DirectoryNotFoundException("src/SelfCascade not found above the test binaries");
    }

    /// <summary>The enclosing method of a line: the nearest preceding member declaration's name.</summary>
    private static string EnclosingMethod(string[] lines, int index)
    {
        var decl = new System.Text.RegularExpressions.Regex(@"^\s*(public|private|protected|internal)\b[^=;]*?\b(\w+)\s*(<[^>]*>)?\(");
        for (int i = index; i >= 0; i--)
        {
            var m = decl.Match(lines[i]);
            if (m.Success) return m.Groups[2].Value;
        }
        return "";
    }

    [Fact]
    public void NothingTheLoopRunsReadsTheDevice()
    {
        var src = SourceRoot();
        var found = new List<string>();
        int scanned = 0;
        foreach (var file in LoopFiles(src))
        {
            var rel = Path.GetRelativePath(src, file).Replace('\\', '/');
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                var code = lines[i].Split("//")[0];
                scanned++;
                if (!HostRead.IsMatch(code)) continue;
                var method = EnclosingMethod(lines, i);
                if (rel == "Pipelines/StableDiffusionPipeline.cs" && method != "Denoise") continue; // decode/encode run after/before the loop
                if (SetUpReads.Any(r => r.File == rel && r.Method == method)) continue;
                found.Add($"{rel}:{i + 1} in {method}: {lines[i].Trim()}");
            }
        }
        Assert.True(scanned > 2000, $"only {scanned} lines scanned: the file list is wrong");
        Assert.True(found.Count == 0, "device-to-host reads in the denoising loop's code:\n" + string.Join("\n", found));
        // The guard itself sees reads (a control, so the scan can fail).
        Assert.Matches(HostRead, "var v = sigma.item<float>();");
        Assert.Matches(HostRead, "x.ToSingle()");
    }

    [Fact]
    public void DenoiseUploadsTimestepsBeforeTheLoop()
    {
        var text = File.ReadAllText(Path.Combine(SourceRoot(), "Pipelines", "StableDiffusionPipeline.cs"));
        var body = text[text.IndexOf("public Tensor Denoise(", StringComparison.Ordinal)..];
        body = body[..body.IndexOf("public Tensor DecodeLatents(", StringComparison.Ordinal)];
        var loop = body[body.IndexOf("for (int i = 0;", StringComparison.Ordinal)..];
        Assert.DoesNotContain("TimestepTensor(", loop);       // no per-step tensor(...) upload of t
        Assert.DoesNotContain("tensor(", loop.Replace("timestepTensors", ""));
    }

    [Fact]
    public void DTypeDefaultsToHalfOnCudaAndFloatOnCpu()
    {
        Assert.Equal(ScalarType.Float16, TorchRuntime.DefaultDType(new Device(DeviceType.CUDA, 1)));
        Assert.Equal(ScalarType.Float32, TorchRuntime.DefaultDType(torch.CPU));
        using var pipe = StableDiffusionPipeline.FromPretrained(TinyModelFolders.BuildSd(Path.Combine(_dir, "sd")));
        Assert.Equal(ScalarType.Float32, pipe.DType);
    }

    [Theory]
    [InlineData(ScalarType.Float16, ScalarType.Float32)] // force_upcast VAE stays fp32 under fp16 (diffusers' rule)
    [InlineData(ScalarType.BFloat16, ScalarType.BFloat16)] // bf16 has fp32's range: no upcast, as diffusers
    public void HalfPrecisionGeneratesCloseToFp32(ScalarType dtype, ScalarType vaeDType)
    {
        var folder = TinyModelFolders.BuildSd(Path.Combine(_dir, "sd"));
        var request = new GenerationRequest("a red circle") { NegativePrompt = "", Steps = 4, Guidance = 7.5, Width = 32, Height = 32, Seed = 0 };
        using var full = StableDiffusionPipeline.FromPretrained(folder);
        using var half = StableDiffusionPipeline.FromPretrained(folder, new PipelineOptions { DType = dtype });
        Assert.Equal(dtype, half.Unet.parameters().First().dtype);
        Assert.Equal(vaeDType, half.VaeDType);
        using var a = full.Generate(request);
        using var b = half.Generate(request);
        Assert.Equal(ScalarType.Float32, b.Latents.dtype); // latents and scheduler math stay fp32
        Assert.True(b.Latents.isfinite().all().item<bool>());
        // Same image up to half-precision rounding (a sanity bound, not parity: a random tiny UNet under CFG 7.5
        // amplifies rounding; bf16 keeps 8 mantissa bits, fp16 11).
        using var x = a.Latents.flatten();
        using var y = b.Latents.flatten();
        double cosine = (x.dot(y) / (x.norm() * y.norm())).item<float>();
        Assert.True(cosine > 0.9, $"{dtype}: cosine(fp32, half) = {cosine}");
        Assert.Equal(a.Images[0].Width, b.Images[0].Width);
    }
}
