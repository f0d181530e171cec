using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Pipelines;
using SelfCascade.Server.Extras;
using SelfCascade.Server.Models;
using SelfCascade.Tests.Support;
using SelfCascade.Tests.Upsamplers;

namespace SelfCascade.Tests.Server.Extras;

/// <summary>
/// A server on the tiny SD model (tests/reference/lora's LoRAs fit it) serving a LoRA "style" (sd_kohya), a LoRA
/// "misfit" whose keys do not fit the model (sdxl_kohya: jobs using it fail), and an upsampler set "tuned" (a seeded,
/// non-zero Lite set saved as train-upsamplers would).
/// </summary>
public sealed class ExtrasServerFixture : IAsyncLifetime
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("sc-extras-").FullName;
    public string Model { get; private set; } = "";
    public string StyleLora { get; } = LoraRef("sd_kohya.safetensors");
    public string MisfitLora { get; } = LoraRef("sdxl_kohya.safetensors");
    public string UpsamplerDir => Path.Combine(Dir, "ups-tuned");
    public TestServer Server { get; private set; } = null!;

    public static string LoraRef(string name) => Path.Combine(Fixtures.RepoRoot, "tests", "reference", "lora", name);

    public async Task InitializeAsync()
    {
        TorchSetup.Ensure();
        Model = TinyModelFolders.BuildSd(Path.Combine(Dir, "model"));
        using (var pipe = StableDiffusionPipeline.FromPretrained(Model))
        {
            using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, pipe.Unet);
            UpsamplerTestSupport.Perturb(set, 3);
            set.Save(UpsamplerDir);
        }
        Server = await TestServer.StartAsync([new ModelSpec("tiny", Model)],
            upsamplers: [new UpsamplerSpec("tuned", [UpsamplerDir])],
            loras: [new LoraSpec("style", StyleLora), new LoraSpec("misfit", MisfitLora)]);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        Directory.Delete(Dir, true);
    }
}
