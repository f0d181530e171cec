using SelfCascade.Models.Clip;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Clip;

/// <summary>models/text_*: tiny transformers CLIP text encoders against their recorded outputs (FIXTURES.md).</summary>
public class ClipTextParityTests
{
    public ClipTextParityTests() => TorchSetup.Ensure();

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var m in new[] { "text_clip_l_style", "text_openclip_h_style", "text_sdxl_text2_style" })
            for (int p = 0; p < 3; p++) data.Add(m, p);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesTransformers(string model, int prompt)
    {
        using var _ = torch.inference_mode();
        using var m = ClipTextModel.FromPretrained(Fixtures.ParityPath("models", model));
        using var io = Parity.Open("models", model, "io.safetensors");
        using var ids = io.Read($"p{prompt}_input_ids");
        using var o = m.Forward(ids, outputHiddenStates: true);

        using (var r = io.Read($"p{prompt}_last_hidden_state")) Parity.AssertClose(o.LastHiddenState, r, $"{model} p{prompt} last_hidden_state");
        using (var r = io.Read($"p{prompt}_penultimate_hidden_state"))
        {
            Parity.AssertClose(o.PenultimateHiddenState, r, $"{model} p{prompt} penultimate (PenultimateHiddenState)");
            Parity.AssertClose(o.HiddenStates![^2], r, $"{model} p{prompt} hidden_states[-2]");
        }
        Assert.Equal(m.Config.NumHiddenLayers + 1, o.HiddenStates!.Count);

        bool projection = io.Entries.ContainsKey($"p{prompt}_text_embeds");
        Assert.Equal(projection, m.Config.WithProjection);
        if (projection)
        {
            using var r = io.Read($"p{prompt}_text_embeds");
            Parity.AssertClose(o.TextEmbeds!, r, $"{model} p{prompt} text_embeds");
        }
        else
        {
            Assert.Null(o.TextEmbeds);
            using var r = io.Read($"p{prompt}_pooler_output");
            Parity.AssertClose(o.PooledOutput, r, $"{model} p{prompt} pooler_output");
        }
    }

    [Fact]
    public void WithoutHiddenStatesGivesTheSameOutputs()
    {
        using var _ = torch.inference_mode();
        using var m = ClipTextModel.FromPretrained(Fixtures.ParityPath("models", "text_sdxl_text2_style"));
        using var io = Parity.Open("models", "text_sdxl_text2_style", "io.safetensors");
        using var ids = io.Read("p0_input_ids");
        using var full = m.Forward(ids, outputHiddenStates: true);
        using var lean = m.Forward(ids);
        Assert.Null(lean.HiddenStates);
        Parity.AssertEqual(lean.LastHiddenState, full.LastHiddenState, "last");
        Parity.AssertEqual(lean.PenultimateHiddenState, full.PenultimateHiddenState, "penultimate");
        Parity.AssertEqual(lean.TextEmbeds!, full.TextEmbeds!, "text_embeds");
    }

    [Fact]
    public void BatchOfPromptsMatchesEachPromptAlone()
    {
        using var _ = torch.inference_mode();
        using var m = ClipTextModel.FromPretrained(Fixtures.ParityPath("models", "text_clip_l_style"));
        using var io = Parity.Open("models", "text_clip_l_style", "io.safetensors");
        var ids = Enumerable.Range(0, 3).Select(i => io.Read($"p{i}_input_ids")).ToArray();
        using var batch = torch.cat(ids, 0);
        using var o = m.Forward(batch);
        for (int i = 0; i < 3; i++)
        {
            using var r = io.Read($"p{i}_pooler_output");
            using var row = o.PooledOutput.narrow(0, i, 1);
            Parity.AssertClose(row, r, $"batched p{i} pooler_output");
            using var rl = io.Read($"p{i}_last_hidden_state");
            using var rowl = o.LastHiddenState.narrow(0, i, 1);
            Parity.AssertClose(rowl, rl, $"batched p{i} last_hidden_state");
            ids[i].Dispose();
        }
    }

    [Fact]
    public void PoolingPositionFollowsTransformersRule()
    {
        // Every row's largest id is 49407 (CLIP's EOS): argmax of the ids, first occurrence (pad = EOS rows too).
        using var eosPadded = torch.tensor(new long[] { 49406, 320, 49407, 49407, 49407, 49406, 49407, 0, 0, 0 }).view(2, 5);
        Assert.Equal(new long[] { 2, 1 }, ClipTextTransformer.PoolIndices(eosPadded, 49407));
        // Legacy configs (eos_token_id = 2) give the same positions through the same rule.
        Assert.Equal(new long[] { 2, 1 }, ClipTextTransformer.PoolIndices(eosPadded, 2));
        // A row without 49407 (new tokens, other vocabulary): first position equal to eos_token_id.
        using var other = torch.tensor(new long[] { 5, 9, 7, 9, 0, 1, 2, 3, 7, 7 }).view(2, 5);
        Assert.Equal(new long[] { 2, 3 }, ClipTextTransformer.PoolIndices(other, 7));
    }
}
