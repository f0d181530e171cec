using SelfCascade.IO;
using SelfCascade.Tests.Support;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Cli;

public sealed class InspectCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-insp-").FullName;
    public InspectCommandTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void DescribesEveryComponentOfAnSdxlFolder()
    {
        var model = TinyModelFolders.BuildSdxl(Path.Combine(_dir, "xl"));
        var (code, output, err) = CliRunner.Run("inspect", "--model", model);
        Assert.True(code == 0, err + output);
        Assert.Contains("family: SDXL", output);
        Assert.Contains("pipeline: StableDiffusionXLPipeline", output);
        foreach (var c in new[] { "unet: UNet2DConditionModel", "vae: AutoencoderKL", "text_encoder: CLIPTextModel", "text_encoder_2: CLIPTextModelWithProjection", "tokenizer: CLIPTokenizer", "scheduler: EulerDiscreteScheduler" })
            Assert.Contains(c, output);
        // Exact parameter count of the tiny SDXL-style UNet: the sum over its weight file's tensors.
        using var f = SafeTensorsFile.Open(Path.Combine(model, "unet", "diffusion_pytorch_model.safetensors"));
        long expected = f.Entries.Values.Sum(e => e.ElementCount);
        Assert.Contains($"parameters: {expected:N0}", output);
        Assert.Contains("vocabulary 49,408 tokens", output);
    }

    [Fact]
    public void ListsEveryWeightProblemAtOnce()
    {
        var model = TinyModelFolders.BuildSd(Path.Combine(_dir, "sd"));
        var weights = Path.Combine(model, "vae", "diffusion_pytorch_model.safetensors");
        var state = new Dictionary<string, Tensor>();
        using (var f = SafeTensorsFile.Open(weights))
            foreach (var name in f.Entries.Keys) state[name] = f.Read(name);
        state.Remove("decoder.conv_out.bias");
        state["decoder.extra.weight"] = zeros(3);
        state["encoder.conv_in.weight"] = zeros(1, 2, 3, 3);
        SafeTensorsWriter.Save(weights, state);
        var (code, output, err) = CliRunner.Run("inspect", "--model", model);
        Assert.Equal(1, code);
        Assert.Contains("missing: decoder.conv_out.bias", output);
        Assert.Contains("unexpected: decoder.extra.weight", output);
        Assert.Contains("wrong shape: encoder.conv_in.weight", output);
        Assert.Contains("3 problem(s)", err);
    }

    [Fact]
    public void MissingFolderIsAnError()
    {
        var (code, _, err) = CliRunner.Run("inspect", "--model", Path.Combine(_dir, "none"));
        Assert.Equal(1, code);
        Assert.StartsWith("error:", err);
    }
}
