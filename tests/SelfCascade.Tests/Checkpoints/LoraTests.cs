using SelfCascade.Checkpoints.Lora;
using SelfCascade.Imaging;
using SelfCascade.IO;
using SelfCascade.Models.Clip;
using SelfCascade.Models.Unet;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Checkpoints;

/// <summary>
/// LoRA merging against tests/reference/lora (make_lora.py: diffusers 0.28's own kohya name conversion, the kohya
/// merge formula in Python since refenv has no peft): merged weights, UNet and text-encoder outputs, a pipeline
/// image, exact restoration, strict/lenient key handling.
/// </summary>
public sealed class LoraTests : IDisposable
{
    private const double Scale = 0.75;
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-lora-").FullName;
    public LoraTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    private static string Ref(string name) => Path.Combine(Fixtures.RepoRoot, "tests", "reference", "lora", name);

    private static Dictionary<string, nn.Module> SdNets() => new()
    {
        ["unet"] = UNet2DConditionModel.FromPretrained(Fixtures.ParityPath("models", "unet_sd2_style")),
        ["text_encoder"] = ClipTextModel.FromPretrained(Fixtures.ParityPath("models", "text_openclip_h_style")),
    };

    private static Dictionary<string, Tensor> Snapshot(IReadOnlyDictionary<string, nn.Module> nets) =>
        nets.SelectMany(kv => kv.Value.state_dict().Select(p => (kv.Key + "/" + p.Key, p.Value.detach().clone())))
            .ToDictionary(t => t.Item1, t => t.Item2);

    [Theory]
    [InlineData("sd_kohya", LoraFormat.Kohya)]
    [InlineData("sd_peft", LoraFormat.Peft)]
    [InlineData("sd_diffusers_old", LoraFormat.DiffusersLegacy)]
    public void SdMergeMatchesReferenceAndRestoresExactly(string name, LoraFormat format)
    {
        var nets = SdNets();
        try
        {
            using var refs = SafeTensorsFile.Open(Ref("reference.safetensors"));
            using var set = LoraSet.Load(Ref(name + ".safetensors"));
            Assert.Equal(format, set.Format);
            var before = Snapshot(nets);
            var report = new ParityReport();
            using (var app = LoraApplication.Apply(nets, set, Scale))
            {
                Assert.True(app.Report.Ok, app.Report.Describe());
                Assert.Equal(set.Layers.Count, app.Report.Matched.Count);
                CheckWeights(refs, name, nets, report);
                using var mode = torch.inference_mode();
                using (var unetOut = ((UNet2DConditionModel)nets["unet"]).Forward(refs.Read("unet_sample"), refs.Read("unet_timestep"), refs.Read("unet_states")))
                    report.Close(unetOut, refs.Read($"{name}/unet_out"), $"{name}/unet_out");
                using var ids = refs.Read("te_ids", ScalarType.Int64);
                using (var te = ((ClipTextModel)nets["text_encoder"]).Forward(ids))
                    report.Close(te.LastHiddenState, refs.Read($"{name}/te_out"), $"{name}/te_out");
            }
            report.ThrowIfAny();
            AssertRestored(nets, before);
        }
        finally { foreach (var n in nets.Values) n.Dispose(); }
    }

    [Fact]
    public void SdxlKohyaMergeMatchesReference()
    {
        var nets = new Dictionary<string, nn.Module>
        {
            ["unet"] = UNet2DConditionModel.FromPretrained(Fixtures.ParityPath("models", "unet_sdxl_style")),
            ["text_encoder"] = ClipTextModel.FromPretrained(Fixtures.ParityPath("models", "text_clip_l_style")),
            ["text_encoder_2"] = ClipTextModel.FromPretrained(Fixtures.ParityPath("models", "text_sdxl_text2_style")),
        };
        try
        {
            using var refs = SafeTensorsFile.Open(Ref("reference.safetensors"));
            using var set = LoraSet.Load(Ref("sdxl_kohya.safetensors"));
            Assert.Contains(set.Layers, l => l.Component == "text_encoder_2");
            var before = Snapshot(nets);
            var report = new ParityReport();
            using (var app = LoraApplication.Apply(nets, set, Scale))
            {
                Assert.True(app.Report.Ok, app.Report.Describe());
                CheckWeights(refs, "sdxl_kohya", nets, report);
                using var mode = torch.inference_mode();
                var added = new UNetAddedConditions(refs.Read("sdxl_text_embeds"), refs.Read("sdxl_time_ids"));
                using (var o = ((UNet2DConditionModel)nets["unet"]).Forward(refs.Read("sdxl_unet_sample"), refs.Read("sdxl_unet_timestep"), refs.Read("sdxl_unet_states"), added))
                    report.Close(o, refs.Read("sdxl_kohya/unet_out"), "sdxl_kohya/unet_out");
                using var ids = refs.Read("te_ids", ScalarType.Int64);
                using (var te = ((ClipTextModel)nets["text_encoder"]).Forward(ids))
                    report.Close(te.LastHiddenState, refs.Read("sdxl_kohya/te_out"), "sdxl_kohya/te_out");
                using (var te2 = ((ClipTextModel)nets["text_encoder_2"]).Forward(ids))
                    report.Close(te2.LastHiddenState, refs.Read("sdxl_kohya/te2_out"), "sdxl_kohya/te2_out");
            }
            report.ThrowIfAny();
            AssertRestored(nets, before);
        }
        finally { foreach (var n in nets.Values) n.Dispose(); }
    }

    [Fact]
    public void SdxlKohyaLdmNamesMatchDiffusersMapping()
    {
        // sd-scripts' SDXL naming (input_blocks/middle_block/output_blocks); reference resolved by diffusers 0.28's
        // _maybe_map_sgm_blocks_to_diffusers (make_lora_ldm.py).
        using var unet = UNet2DConditionModel.FromPretrained(Fixtures.ParityPath("models", "unet_sdxl_style"));
        var nets = new Dictionary<string, nn.Module> { ["unet"] = unet };
        using var refs = SafeTensorsFile.Open(Ref("reference.safetensors"));
        using var ldmRef = SafeTensorsFile.Open(Ref("reference_ldm.safetensors"));
        using var set = LoraSet.Load(Ref("sdxl_kohya_ldm.safetensors"));
        Assert.Contains(set.Layers, l => l.FlatName!.StartsWith("output_blocks_"));
        var before = Snapshot(nets);
        using (var app = LoraApplication.Apply(nets, set, Scale))
        {
            Assert.True(app.Report.Ok, app.Report.Describe());
            using var mode = torch.inference_mode();
            var added = new UNetAddedConditions(refs.Read("sdxl_text_embeds"), refs.Read("sdxl_time_ids"));
            using var o = unet.Forward(refs.Read("sdxl_unet_sample"), refs.Read("sdxl_unet_timestep"), refs.Read("sdxl_unet_states"), added);
            Parity.AssertClose(o, ldmRef.Read("sdxl_kohya_ldm/unet_out"), "sdxl_kohya_ldm/unet_out");
        }
        AssertRestored(nets, before);
    }

    private static void CheckWeights(SafeTensorsFile refs, string name, IReadOnlyDictionary<string, nn.Module> nets, ParityReport report)
    {
        int n = 0;
        foreach (var key in refs.Entries.Keys.Where(k => k.StartsWith(name + "/w/", StringComparison.Ordinal)))
        {
            var rest = key[(name.Length + 3)..];
            int dot = rest.IndexOf('.');
            var comp = rest[..dot];
            var state = nets[comp].state_dict();
            var module = rest[(dot + 1)..];
            // Our CLIPTextModel uses the transformers-5 names (no text_model. prefix); the reference has 4.x names.
            if (!state.ContainsKey(module + ".weight") && module.StartsWith("text_model.")) module = module["text_model.".Length..];
            var weight = state[module + ".weight"];
            report.Close(weight, refs.Read(key), key);
            n++;
        }
        Assert.True(n >= 3, $"{name}: only {n} reference weights");
    }

    private static void AssertRestored(IReadOnlyDictionary<string, nn.Module> nets, Dictionary<string, Tensor> before)
    {
        var after = Snapshot(nets);
        var changed = before.Where(kv => !Parity.Same(kv.Value, after[kv.Key])).Select(kv => kv.Key).ToList();
        Assert.True(changed.Count == 0, $"not restored bit for bit: {string.Join(", ", changed.Take(5))}");
        foreach (var t in before.Values.Concat(after.Values)) t.Dispose();
    }

    [Fact]
    public void PipelineImageWithKohyaLoraMatchesDiffusers()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(TinyModelFolders.BuildSd(Path.Combine(_dir, "sd")));
        using var refs = SafeTensorsFile.Open(Ref("reference.safetensors"));
        using (var set = LoraSet.Load(Ref("sd_kohya.safetensors")))
        using (pipe.ApplyLora(set, Scale))
        {
            using var result = pipe.Generate(new GenerationRequest("a photo of a red circle") { NegativePrompt = "", Steps = 10, Guidance = 7.5, Width = 32, Height = 32, Seed = 0 });
            using var image = pipe.DecodeLatents(result.Latents);
            using var unit = (image / 2 + 0.5).clamp(0, 1);
            Parity.AssertClose(unit, refs.Read("sd_kohya/image_out"), "sd_kohya/image_out");
        }
        // Restored: the plain pipeline reproduces the fixture without LoRA again.
        using var f = Parity.Open("pipelines", "sd_tiny", "io.safetensors");
        using var plain = pipe.Generate(new GenerationRequest("a photo of a red circle") { NegativePrompt = "", Steps = 10, Guidance = 7.5, Width = 32, Height = 32, Seed = 0 });
        Parity.AssertClose(plain.Latents, f.Read("base_latents_out"), "latents after removing the LoRA");
    }

    [Fact]
    public void CliGenerateWithLoraGivesTheReferenceImage()
    {
        var model = TinyModelFolders.BuildSd(Path.Combine(_dir, "model"));
        var outPng = Path.Combine(_dir, "lora.png");
        var (code, _, err) = CliRunner.Run("generate", "--model", model, "--prompt", "a photo of a red circle", "--negative-prompt", "",
            "--seed", "0", "--steps", "10", "--guidance", "7.5", "--size", "32x32", "--lora", Ref("sd_kohya.safetensors") + ":0.75", "--out", outPng);
        Assert.True(code == 0, err);
        using var refs = SafeTensorsFile.Open(Ref("reference.safetensors"));
        using var reference = refs.Read("sd_kohya/image_out");
        var expected = RgbImage.FromUnitTensor(reference[0]);
        var png = RgbImage.Load(outPng);
        int maxDiff = png.Pixels.Zip(expected.Pixels, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDiff <= 1, $"max pixel difference {maxDiff} levels");
        // A LoRA whose keys do not fit is one error naming them; --lora-lenient skips them.
        var sdxlLora = Ref("sdxl_kohya.safetensors");
        var (bad, _, badErr) = CliRunner.Run("generate", "--model", model, "--prompt", "x", "--steps", "1", "--size", "32x32", "--lora", sdxlLora, "--out", Path.Combine(_dir, "bad.png"));
        Assert.NotEqual(0, bad);
        Assert.Contains("lora_te2_", badErr);
        Assert.Contains("--lora-lenient", badErr);
        Assert.False(File.Exists(Path.Combine(_dir, "bad.png")));
    }

    [Fact]
    public void UnknownAndUnmatchedKeysFailTogetherUnlessLenient()
    {
        var path = Path.Combine(_dir, "mixed.safetensors");
        using (var src = SafeTensorsFile.Open(Ref("sd_kohya.safetensors")))
        {
            var tensors = src.Entries.Keys.ToDictionary(k => k, k => src.Read(k));
            tensors["lora_unet_down_blocks_9_attentions_0_proj_in.lora_down.weight"] = torch.ones(2, 8);
            tensors["lora_unet_down_blocks_9_attentions_0_proj_in.lora_up.weight"] = torch.ones(8, 2);
            tensors["something_else.weight"] = torch.ones(3);
            tensors["lora_unet_mid_block_attentions_0_proj_out.lora_up.weight"] = torch.ones(7, 2); // wrong shape, replaces the real one
            SafeTensorsWriter.Save(path, tensors);
            foreach (var t in tensors.Values) t.Dispose();
        }
        var nets = SdNets();
        try
        {
            using var set = LoraSet.Load(path);
            var before = Snapshot(nets);
            var e = Assert.Throws<LoraException>(() => LoraApplication.Apply(nets, set, 1.0));
            Assert.Contains("down_blocks_9", e.Message);
            Assert.Contains("something_else.weight", e.Message);
            Assert.Contains("mid_block_attentions_0_proj_out", e.Message);
            Assert.DoesNotContain('\n', e.Message);
            AssertRestored(nets, before);     // nothing changed by the refused merge
            before = Snapshot(nets);
            using (var app = LoraApplication.Apply(nets, set, 1.0, lenient: true))
                Assert.Equal(set.Layers.Count - 2, app.Report.Matched.Count);
            AssertRestored(nets, before);
        }
        finally { foreach (var n in nets.Values) n.Dispose(); }
    }

    [Fact]
    public void MalformedLoraFilesAreOneLineErrors()
    {
        var cases = new (string Name, Dictionary<string, Tensor> Tensors, string Expect)[]
        {
            ("rank", new() { ["lora_unet_x.lora_down.weight"] = torch.ones(4, 8), ["lora_unet_x.lora_up.weight"] = torch.ones(8, 3) }, "rank mismatch"),
            ("alpha", new() { ["lora_unet_x.lora_down.weight"] = torch.ones(2, 8), ["lora_unet_x.lora_up.weight"] = torch.ones(8, 2), ["lora_unet_x.alpha"] = torch.tensor(double.NaN) }, "not finite"),
            ("alpha2", new() { ["lora_unet_x.lora_down.weight"] = torch.ones(2, 8), ["lora_unet_x.lora_up.weight"] = torch.ones(8, 2), ["lora_unet_x.alpha"] = torch.ones(2) }, "not a scalar"),
            ("dims", new() { ["lora_unet_x.lora_down.weight"] = torch.ones(2, 8, 1), ["lora_unet_x.lora_up.weight"] = torch.ones(8, 2) }, "2-D or 4-D"),
            ("upconv", new() { ["lora_unet_x.lora_down.weight"] = torch.ones(2, 8, 3, 3), ["lora_unet_x.lora_up.weight"] = torch.ones(8, 2, 3, 3) }, "1x1"),
            ("none", new() { ["model.weight"] = torch.ones(2, 2) }, "no LoRA layers"),
        };
        foreach (var (name, tensors, expect) in cases)
        {
            var path = Path.Combine(_dir, name + ".safetensors");
            SafeTensorsWriter.Save(path, tensors);
            var e = Assert.Throws<LoraException>(() => LoraSet.Load(path).Dispose());
            Assert.Contains(expect, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        // A pickle LoRA goes through the allow-list unpickler (refused globals surface as its exception).
        Assert.Throws<SelfCascade.Checkpoints.Pickle.UnsafePickleException>(() =>
            LoraSet.Load(Path.Combine(Fixtures.RepoRoot, "tests", "reference", "pickle", "evil_os.pt")));
    }

    [Fact]
    public void StackedLorasRestoreInReverseOrderOnly()
    {
        var nets = SdNets();
        try
        {
            using var a = LoraSet.Load(Ref("sd_kohya.safetensors"));
            using var b = LoraSet.Load(Ref("sd_peft.safetensors"));
            var before = Snapshot(nets);
            var first = LoraApplication.Apply(nets, a, 0.5);
            var second = LoraApplication.Apply(nets, b, -1.25);
            Assert.Throws<InvalidOperationException>(() => first.Dispose());
            second.Dispose();
            first.Dispose();
            AssertRestored(nets, before);
        }
        finally { foreach (var n in nets.Values) n.Dispose(); }
    }

    [Fact]
    public void LdmLayoutNamesResolveToDiffusersModules()
    {
        // sd-scripts' SDXL naming (input_blocks/middle_block/output_blocks) for unet_sd2_style (layers_per_block 2,
        // down blocks with attention 0 and 1, up blocks with attention 1 and 2).
        using var unet = UNet2DConditionModel.FromPretrained(Fixtures.ParityPath("models", "unet_sd2_style"));
        var index = unet.state_dict().Keys.Where(k => k.EndsWith(".weight")).Select(k => k[..^7])
            .ToDictionary(m => m.Replace('.', '_'), m => (string?)m);
        (string Ldm, string Module)[] cases =
        [
            ("input_blocks_1_0_in_layers_2", "down_blocks.0.resnets.0.conv1"),
            ("input_blocks_2_1_transformer_blocks_0_attn1_to_q", "down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_q"),
            ("input_blocks_3_0_op", "down_blocks.0.downsamplers.0.conv"),
            ("input_blocks_4_0_skip_connection", "down_blocks.1.resnets.0.conv_shortcut"),
            ("input_blocks_5_0_emb_layers_1", "down_blocks.1.resnets.1.time_emb_proj"),
            ("middle_block_1_proj_out", "mid_block.attentions.0.proj_out"),
            ("middle_block_2_out_layers_3", "mid_block.resnets.1.conv2"),
            ("output_blocks_2_1_conv", "up_blocks.0.upsamplers.0.conv"),
            ("output_blocks_4_1_transformer_blocks_0_attn2_to_k", "up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_k"),
            ("output_blocks_5_2_conv", "up_blocks.1.upsamplers.0.conv"),
            ("output_blocks_8_0_skip_connection", "up_blocks.2.resnets.2.conv_shortcut"),
            ("time_embed_0", "time_embedding.linear_1"),
        ];
        foreach (var (ldm, module) in cases)
            Assert.Equal(module, LdmUnetNames.TryResolve("unet", ldm, index));
        Assert.Null(LdmUnetNames.TryResolve("unet", "input_blocks_1_1_proj_in_nonsense", index));
    }

    [Fact]
    public void InspectReportsMatchedAndUnmatchedKeys()
    {
        var model = TinyModelFolders.BuildSd(Path.Combine(_dir, "m"));
        var (code, output, err) = CliRunner.Run("inspect", "--lora", Ref("sd_kohya.safetensors"), "--model", model, "--json");
        Assert.True(code == 0, err);
        Assert.Contains("\"matched\":", output);
        var doc = System.Text.Json.JsonDocument.Parse(output);
        using var set = LoraSet.Load(Ref("sd_kohya.safetensors"));
        Assert.Equal(set.Layers.Count, doc.RootElement.GetProperty("match").GetProperty("matched").GetInt32());
        var (code2, output2, err2) = CliRunner.Run("inspect", "--lora", Ref("sdxl_kohya.safetensors"), "--model", model);
        Assert.Equal(1, code2);
        Assert.Contains("unmatched: lora_te2_", output2);
        Assert.Contains("unknown or unmatched", err2);
    }
}
