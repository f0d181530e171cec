using System.Text.Json;
using SelfCascade.IO;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.IO;

public sealed class ModelFolderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-mf-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static ConfigJson ArchConfig(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.ParityPath("arch", file)));
        return new ConfigJson(doc.RootElement.GetProperty("config"), file);
    }

    private static ConfigJson ModelConfig(string folder) => ConfigJson.Load(Fixtures.ParityPath("models", folder, "config.json"));

    [Fact]
    public void FamilyIsDetectedFromTheFullSizeConfigs()
    {
        Assert.Equal(ModelFamily.StableDiffusion1, DiffusersModelFolder.DetectFamily(ArchConfig("unet_sd15.json"), ArchConfig("text_clip_vit_l14.json")));
        Assert.Equal(ModelFamily.StableDiffusion2, DiffusersModelFolder.DetectFamily(ArchConfig("unet_sd21_base.json"), ArchConfig("text_openclip_vit_h14_sd2.json")));
        Assert.Equal(ModelFamily.StableDiffusionXL, DiffusersModelFolder.DetectFamily(ArchConfig("unet_sdxl.json"), ArchConfig("text_clip_vit_l14.json")));
    }

    [Fact]
    public void FamilyIsDetectedFromTheTinyConfigs()
    {
        Assert.Equal(ModelFamily.StableDiffusion1, DiffusersModelFolder.DetectFamily(ModelConfig("unet_sd15_style"), ModelConfig("text_clip_l_style")));
        Assert.Equal(ModelFamily.StableDiffusion2, DiffusersModelFolder.DetectFamily(ModelConfig("unet_sd2_style"), ModelConfig("text_openclip_h_style")));
        Assert.Equal(ModelFamily.StableDiffusionXL, DiffusersModelFolder.DetectFamily(ModelConfig("unet_sdxl_style"), ModelConfig("text_clip_l_style")));
    }

    [Fact]
    public void ModelIndexListsComponentsAndSkipsOptionalNulls()
    {
        File.WriteAllText(Path.Combine(_dir, "model_index.json"), """
            { "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.30.0",
              "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
              "safety_checker": [null, null], "requires_safety_checker": false,
              "tokenizer": ["transformers", "CLIPTokenizer"] }
            """);
        Directory.CreateDirectory(Path.Combine(_dir, "unet"));
        var f = DiffusersModelFolder.Open(_dir);
        Assert.Equal("StableDiffusionPipeline", f.PipelineClass);
        Assert.Equal(["tokenizer", "unet", "vae"], f.Components.Keys.OrderBy(k => k));
        Assert.Equal("UNet2DConditionModel", f.Components["unet"].ClassName);
        Assert.EndsWith("unet", f.ComponentDir("unet"));
        var missingDir = Assert.Throws<DirectoryNotFoundException>(() => f.ComponentDir("vae"));
        Assert.Contains("vae/", missingDir.Message);
        var notListed = Assert.Throws<InvalidDataException>(() => f.ComponentDir("text_encoder_2"));
        Assert.Contains("text_encoder_2", notListed.Message);
    }

    [Fact]
    public void UnreadableFoldersGiveClearErrors()
    {
        Assert.Throws<DirectoryNotFoundException>(() => DiffusersModelFolder.Open(Path.Combine(_dir, "nothing")));
        var e = Assert.Throws<FileNotFoundException>(() => DiffusersModelFolder.Open(_dir));
        Assert.Contains("model_index.json", e.Message);
        File.WriteAllText(Path.Combine(_dir, "model_index.json"), "{ not json");
        var bad = Assert.Throws<ConfigException>(() => DiffusersModelFolder.Open(_dir));
        Assert.Contains("not valid JSON", bad.Message);
    }

    [Fact]
    public void ConfigReportsEveryProblemAtOnce()
    {
        var c = ConfigJson.Parse("""{ "a": -3, "b": "x", "list": [1, "two"], "extra_unknown_key": 5 }""", "cfg.json");
        c.Int("a", min: 0);
        c.Int("b");
        c.Int("required_missing");
        c.IntList("list");
        c.Int("extra_defaulted", 7);
        var e = Assert.Throws<ConfigException>(c.ThrowIfInvalid);
        Assert.Contains("cfg.json: 4 problem(s)", e.Message);
        Assert.Contains("'a' = -3", e.Message);
        Assert.Contains("'b' must be an integer", e.Message);
        Assert.Contains("required key 'required_missing'", e.Message);
        Assert.Contains("non-integer entry", e.Message);
    }
}
