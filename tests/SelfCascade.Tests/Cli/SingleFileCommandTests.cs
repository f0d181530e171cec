using System.Text.Json;
using SelfCascade.Imaging;
using SelfCascade.IO;
using SelfCascade.Tests.Checkpoints;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Cli;

/// <summary>`--model file.safetensors` through the CLI: inspect, generate (same pixels as the folder), convert both ways.</summary>
public sealed class SingleFileCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-sfcli-").FullName;
    public SingleFileCommandTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void InspectReportsFamilyPredictionDTypesAndParameterCounts()
    {
        var folder = TinyModelFolders.BuildSdxl(Path.Combine(_dir, "xl"));
        var file = SingleFileReference.WriteSingleFile(folder, Path.Combine(_dir, "xl.safetensors"));
        var (code, output, err) = CliRunner.Run("inspect", "--model", file, "--config", folder, "--json");
        Assert.True(code == 0, err + output);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Equal("SDXL", root.GetProperty("family").GetString());
        Assert.Equal("epsilon", root.GetProperty("prediction_type").GetString());
        var components = root.GetProperty("components").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!);
        Assert.Equal(["text_encoder", "text_encoder_2", "unet", "vae"], components.Keys.Order());
        using var unet = SafeTensorsFile.Open(Path.Combine(folder, "unet", "diffusion_pytorch_model.safetensors"));
        Assert.Equal(unet.Entries.Values.Sum(e => e.ElementCount), components["unet"].GetProperty("parameters").GetInt64());
        Assert.Equal(unet.Entries.Count, components["unet"].GetProperty("dtypes").GetProperty("F32").GetInt64());
        Assert.True(components.Values.All(c => c.GetProperty("ok").GetBoolean()));

        // Without --config the built-in full-size SDXL configs do not fit a tiny file: every problem is listed, exit 1.
        var (code2, out2, err2) = CliRunner.Run("inspect", "--model", file);
        Assert.Equal(1, code2);
        Assert.Contains("configs: built-in sdxl-base", out2);
        Assert.Contains("wrong shape", out2);
        Assert.StartsWith("error: ", err2.Trim());
    }

    [Fact]
    public void GenerateFromTheFileMatchesTheFolderAndConvertRoundTrips()
    {
        var folder = TinyModelFolders.BuildSd(Path.Combine(_dir, "sd"));
        var file = SingleFileReference.WriteSingleFile(folder, Path.Combine(_dir, "sd.safetensors"));
        string[] common = ["--prompt", "a red circle", "--steps", "4", "--size", "32x32", "--seed", "3"];
        var (c1, o1, e1) = CliRunner.Run(["generate", "--model", folder, "--out", Path.Combine(_dir, "a.png"), .. common]);
        Assert.True(c1 == 0, e1 + o1);
        var (c2, o2, e2) = CliRunner.Run(["generate", "--model", file, "--config", folder, "--out", Path.Combine(_dir, "b.png"), .. common]);
        Assert.True(c2 == 0, e2 + o2);
        Assert.Equal(Pixels(Path.Combine(_dir, "a.png")), Pixels(Path.Combine(_dir, "b.png")));
        var (cp, op, ep) = CliRunner.Run("plan", "--model", file, "--config", folder, "--size", "64x64");
        Assert.True(cp == 0, ep + op);
        var (cf, of, _) = CliRunner.Run("plan", "--model", folder, "--size", "64x64");
        Assert.Equal(of, op);

        var converted = Path.Combine(_dir, "converted");
        var (c3, o3, e3) = CliRunner.Run("convert", "--model", file, "--config", folder, "--out", converted);
        Assert.True(c3 == 0, e3 + o3);
        Assert.True(File.Exists(Path.Combine(converted, "model_index.json")));
        Assert.True(File.Exists(Path.Combine(converted, "tokenizer", "vocab.json")));
        var back = Path.Combine(_dir, "back.safetensors");
        var (c4, o4, e4) = CliRunner.Run("convert", "--model", converted, "--to", "single-file", "--out", back);
        Assert.True(c4 == 0, e4 + o4);
        Assert.Empty(SingleFileReference.Compare(back, SingleFileReference.Manifest("sd_tiny", "fp32")));
        // Refuses to overwrite.
        var (c5, _, e5) = CliRunner.Run("convert", "--model", converted, "--to", "single-file", "--out", back);
        Assert.Equal(1, c5);
        Assert.Contains("not overwriting", e5);
    }

    private static byte[] Pixels(string png) => RgbImage.Load(png).Pixels;
}
