using SelfCascade.IO;
using SelfCascade.Models.Clip;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Clip;

/// <summary>Config reading, checkpoint layouts, device/dtype options and memory of the CLIP text encoders.</summary>
public class ClipTextLoadingTests : IDisposable
{
    private readonly string _tmp = Path.Combine(Path.GetTempPath(), "selfcascade-clip-" + Guid.NewGuid().ToString("N"));

    public ClipTextLoadingTests()
    {
        TorchSetup.Ensure();
        Directory.CreateDirectory(_tmp);
    }

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Fact]
    public void ReadsFixtureConfigs()
    {
        var l = ClipTextConfig.Load(Fixtures.ParityPath("models", "text_clip_l_style", "config.json"));
        Assert.Equal((49408, 32, 37, 3, 4, 77), (l.VocabSize, l.HiddenSize, l.IntermediateSize, l.NumHiddenLayers, l.NumAttentionHeads, l.MaxPositionEmbeddings));
        Assert.Equal(("quick_gelu", 1e-5, 32, 49407, 49406, 1), (l.HiddenAct, l.LayerNormEps, l.ProjectionDim, l.EosTokenId, l.BosTokenId, l.PadTokenId));
        Assert.False(l.WithProjection);
        Assert.Equal("gelu", ClipTextConfig.Load(Fixtures.ParityPath("models", "text_openclip_h_style", "config.json")).HiddenAct);
        Assert.True(ClipTextConfig.Load(Fixtures.ParityPath("models", "text_sdxl_text2_style", "config.json")).WithProjection);
    }

    [Fact]
    public void ReportsEveryConfigProblemAtOnce()
    {
        var json = ConfigJson.Parse("""
            { "architectures": ["CLIPTextModelWithProjection"], "some_new_key": {"x": 1},
              "vocab_size": 100, "hidden_size": 30, "num_attention_heads": 4, "num_hidden_layers": 0,
              "max_position_embeddings": 77, "hidden_act": "swish", "eos_token_id": 100 }
            """, "bad.json");
        ClipTextConfig.From(json);
        var e = Assert.Throws<ConfigException>(json.ThrowIfInvalid);
        foreach (var part in new[] { "'intermediate_size' is missing", "'projection_dim' is missing", "'num_hidden_layers' = 0",
                     "'hidden_size' = 30 is not divisible by 'num_attention_heads' = 4", "'hidden_act' = 'swish'", "'eos_token_id' = 100" })
            Assert.Contains(part, e.Message);
        Assert.DoesNotContain("some_new_key", e.Message);
    }

    [Fact]
    public void ConstructorValidatesConfigsBuiltInCode()
    {
        var bad = new ClipTextConfig
        {
            VocabSize = 10, HiddenSize = 10, IntermediateSize = 0, NumHiddenLayers = 1, NumAttentionHeads = 3,
            MaxPositionEmbeddings = 4, EosTokenId = 9, HiddenAct = "gelu",
        };
        var e = Assert.Throws<ConfigException>(() => new ClipTextModel(bad, device: torch.META));
        Assert.Contains("'intermediate_size' = 0 must be at least 1", e.Message);
        Assert.Contains("'hidden_size' = 10 is not divisible by 'num_attention_heads' = 3", e.Message);
    }

    [Fact]
    public void RejectsAnotherArchitecture()
    {
        var json = ConfigJson.Parse("""{ "architectures": ["CLIPModel"], "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 4, "eos_token_id": 9 }""");
        ClipTextConfig.From(json);
        var e = Assert.Throws<ConfigException>(json.ThrowIfInvalid);
        Assert.Contains("'CLIPModel'", e.Message);
    }

    /// <summary>
    /// SD hub folders and transformers 4.x write CLIPTextModel keys under <c>text_model.</c> with a
    /// <c>position_ids</c> buffer; transformers 5.x loads them into its flat CLIPTextModel, and so must we.
    /// </summary>
    [Fact]
    public void LoadsLegacyPrefixedCheckpoint()
    {
        var src = Fixtures.ParityPath("models", "text_clip_l_style");
        var tensors = new Dictionary<string, Tensor>();
        using (var f = SafeTensorsFile.Open(Path.Combine(src, "model.safetensors")))
            foreach (var name in f.Entries.Keys) tensors["text_model." + name] = f.Read(name);
        tensors["text_model.embeddings.position_ids"] = torch.arange(77L).unsqueeze(0);
        SafeTensorsWriter.Save(Path.Combine(_tmp, "model.safetensors"), tensors);
        foreach (var t in tensors.Values) t.Dispose();
        // A hub config of that era: legacy eos_token_id 2, no architectures override needed.
        var cfg = File.ReadAllText(Path.Combine(src, "config.json")).Replace("\"eos_token_id\": 49407", "\"eos_token_id\": 2");
        File.WriteAllText(Path.Combine(_tmp, "config.json"), cfg);

        using var _ = torch.inference_mode();
        using var m = ClipTextModel.FromPretrained(_tmp);
        Assert.Equal(2, m.Config.EosTokenId);
        using var io = Parity.Open("models", "text_clip_l_style", "io.safetensors");
        using var ids = io.Read("p0_input_ids");
        using var o = m.Forward(ids);
        using var r = io.Read("p0_last_hidden_state");
        Parity.AssertClose(o.LastHiddenState, r, "legacy checkpoint last_hidden_state");
        using var rp = io.Read("p0_pooler_output");
        Parity.AssertClose(o.PooledOutput, rp, "legacy checkpoint pooler_output");
    }

    [Fact]
    public void MissingAndUnexpectedKeysAreAllReported()
    {
        var src = Fixtures.ParityPath("models", "text_sdxl_text2_style");
        var tensors = new Dictionary<string, Tensor>();
        using (var f = SafeTensorsFile.Open(Path.Combine(src, "model.safetensors")))
            foreach (var name in f.Entries.Keys)
                if (name != "text_projection.weight" && name != "text_model.final_layer_norm.bias") tensors[name] = f.Read(name);
        tensors["text_model.extra.weight"] = torch.zeros(3);
        SafeTensorsWriter.Save(Path.Combine(_tmp, "model.safetensors"), tensors);
        foreach (var t in tensors.Values) t.Dispose();
        File.Copy(Path.Combine(src, "config.json"), Path.Combine(_tmp, "config.json"));

        var e = Assert.Throws<WeightLoadException>(() => ClipTextModel.FromPretrained(_tmp));
        Assert.Equal(["text_model.final_layer_norm.bias", "text_projection.weight"], e.Report.Missing);
        Assert.Equal(["text_model.extra.weight"], e.Report.Unexpected);
    }

    [Fact]
    public void ProjectionIsDetectedFromWeightsWhenConfigNamesNoClass()
    {
        var src = Fixtures.ParityPath("models", "text_sdxl_text2_style");
        File.Copy(Path.Combine(src, "model.safetensors"), Path.Combine(_tmp, "model.safetensors"));
        var cfg = File.ReadAllText(Path.Combine(src, "config.json")).Replace("\"CLIPTextModelWithProjection\"", "").Replace("\"architectures\": [\n    \n  ],", "");
        File.WriteAllText(Path.Combine(_tmp, "config.json"), cfg);
        using var m = ClipTextModel.FromPretrained(_tmp);
        Assert.True(m.Config.WithProjection);
    }

    [Fact]
    public void DTypeOptionCreatesAndRunsInThatType()
    {
        using var _ = torch.inference_mode();
        using var m = ClipTextModel.FromPretrained(Fixtures.ParityPath("models", "text_openclip_h_style"), dtype: ScalarType.Float64);
        Assert.All(m.parameters(), p => Assert.Equal(ScalarType.Float64, p.dtype));
        Assert.All(m.parameters(), p => Assert.False(p.requires_grad));
        using var io = Parity.Open("models", "text_openclip_h_style", "io.safetensors");
        using var ids = io.Read("p2_input_ids");
        using var o = m.Forward(ids.to(ScalarType.Int32));
        Assert.Equal(ScalarType.Float64, o.LastHiddenState.dtype);
        using var r = io.Read("p2_last_hidden_state");
        Parity.AssertClose(o.LastHiddenState, r, "float64 last_hidden_state");
    }

    [Theory]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    public void HalfPrecisionRunsAndStaysFinite(ScalarType dtype)
    {
        // A smoke test of the reduced-precision path (parity is defined in float32 only).
        using var _ = torch.inference_mode();
        using var m = ClipTextModel.FromPretrained(Fixtures.ParityPath("models", "text_sdxl_text2_style"), dtype: dtype);
        using var io = Parity.Open("models", "text_sdxl_text2_style", "io.safetensors");
        using var ids = io.Read("p0_input_ids");
        using var o = m.Forward(ids, outputHiddenStates: true);
        Assert.Equal(dtype, o.LastHiddenState.dtype);
        Assert.Equal(dtype, o.TextEmbeds!.dtype);
        using var finite = o.LastHiddenState.isfinite().all();
        Assert.True(finite.item<bool>());
    }

    [Fact]
    public void ModuleToMovesEveryParameter()
    {
        using var _ = torch.inference_mode();
        using var m = ClipTextModel.FromPretrained(Fixtures.ParityPath("models", "text_clip_l_style"));
        m.to(ScalarType.Float64);
        Assert.All(m.parameters(), p => Assert.Equal(ScalarType.Float64, p.dtype));
        using var io = Parity.Open("models", "text_clip_l_style", "io.safetensors");
        using var ids = io.Read("p1_input_ids");
        using var o = m.Forward(ids);
        using var r = io.Read("p1_pooler_output");
        Parity.AssertClose(o.PooledOutput, r, "after .to(float64) pooler_output");
    }

    [Fact]
    public void RepeatedForwardsLeakNoTensors()
    {
        using var _ = torch.inference_mode();
        using var m = ClipTextModel.FromPretrained(Fixtures.ParityPath("models", "text_sdxl_text2_style"));
        using var io = Parity.Open("models", "text_sdxl_text2_style", "io.safetensors");
        using var ids = io.Read("p0_input_ids");
        void Once(bool all) { using var o = m.Forward(ids, all); }
        Once(true); Once(false); // warm-up
        LiveTensors.Settle();
        long live = torch.Tensor.TotalCount;
        long threadLive = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 5; i++) { Once(false); Once(true); }
        LiveTensors.Settle();
        Assert.Equal(live, torch.Tensor.TotalCount);
        Assert.Equal(threadLive, DisposeScopeManager.Statistics.ThreadTotalLiveCount);

        // Taking a tensor out keeps exactly that one alive.
        Tensor kept;
        using (var o = m.Forward(ids)) kept = o.Take(o.TextEmbeds!);
        LiveTensors.Settle();
        Assert.Equal(live + 1, torch.Tensor.TotalCount);
        kept.Dispose();
        Assert.Equal(live, torch.Tensor.TotalCount);
    }
}
