using SelfCascade.IO;
using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Models.Unet;

/// <summary>
/// diffusers `UNet2DConditionModel` for SD 1.x / 2.x / SDXL, built from its `config.json` with diffusers'
/// state-dict names. Besides the plain <see cref="Forward"/>, the pieces the Self-Cascade code needs are public:
/// <see cref="TimeEmbedding"/>, <see cref="ForwardWithEmbedding"/> (the whole network given `emb`),
/// <see cref="ForwardEncoder"/> (conv_in + down blocks + mid block only) and the per-block
/// <see cref="IUNetFeatureHook"/>.
/// </summary>
public sealed class UNet2DConditionModel : nn.Module
{
    private readonly Conv2d conv_in;
    private readonly Timesteps time_proj;
    private readonly TimestepEmbedding time_embedding;
    private readonly Timesteps? add_time_proj;
    private readonly TimestepEmbedding? add_embedding;
    private readonly ModuleList<UNetDownBlock> down_blocks;
    private readonly UNetMidBlock2DCrossAttn mid_block;
    private readonly ModuleList<UNetUpBlock> up_blocks;
    private readonly GroupNorm conv_norm_out;
    private readonly Conv2d conv_out;
    private readonly Scalar _two = 2.0.ToScalar();
    private readonly Scalar _one = 1.0.ToScalar();

    public UNet2DConditionConfig Config { get; }

    public UNet2DConditionModel(UNet2DConditionConfig config) : base(nameof(UNet2DConditionModel))
    {
        Config = config;
        var c = config;
        int n = c.NumBlocks;
        long temb = c.TimeEmbedDim;
        var ch = c.BlockOutChannels;

        conv_in = nn.Conv2d(c.InChannels, ch[0], c.ConvInKernel, stride: 1, padding: (c.ConvInKernel - 1) / 2);
        time_proj = new Timesteps(ch[0], c.FlipSinToCos, c.FreqShift);
        time_embedding = new TimestepEmbedding(ch[0], temb);
        if (c.HasTextTimeEmbedding)
        {
            add_time_proj = new Timesteps(c.AdditionTimeEmbedDim!.Value, c.FlipSinToCos, c.FreqShift);
            add_embedding = new TimestepEmbedding(c.ProjectionClassEmbeddingsInputDim!.Value, temb);
        }

        var downs = new List<UNetDownBlock>();
        long output = ch[0];
        for (int i = 0; i < n; i++)
        {
            long input = output;
            output = ch[i];
            bool last = i == n - 1;
            downs.Add(c.DownBlockTypeNames[i] == "CrossAttnDownBlock2D"
                ? new CrossAttnDownBlock2D(c.LayersPerBlock[i], c.TransformerLayersPerBlock[i], input, output, temb, !last,
                    c.NormNumGroups, c.NormEps, c.Dropout, c.DownsamplePadding, c.NumAttentionHeads[i],
                    c.CrossAttentionDim[i], c.UseLinearProjection, c.UpcastAttention)
                : new DownBlock2D(c.LayersPerBlock[i], input, output, temb, !last, c.NormNumGroups, c.NormEps, c.Dropout,
                    c.DownsamplePadding));
        }
        for (int i = 0; i < downs.Count; i++) downs[i].Index = i;
        down_blocks = nn.ModuleList(downs.ToArray());

        mid_block = new UNetMidBlock2DCrossAttn(ch[^1], temb, c.TransformerLayersPerBlock[^1], c.NormNumGroups, c.NormEps,
            c.Dropout, c.MidBlockScaleFactor, c.NumAttentionHeads[^1], c.CrossAttentionDim[^1], c.UseLinearProjection,
            c.UpcastAttention);

        // Up blocks mirror the down blocks: per-block lists are read reversed (diffusers' reversed_* lists).
        var ups = new List<UNetUpBlock>();
        output = ch[^1];
        for (int i = 0; i < n; i++)
        {
            int r = n - 1 - i;
            bool last = i == n - 1;
            long prevOutput = output;
            output = ch[r];
            long input = ch[Math.Max(r - 1, 0)];
            int layers = c.LayersPerBlock[r] + 1;
            ups.Add(c.UpBlockTypeNames[i] == "CrossAttnUpBlock2D"
                ? new CrossAttnUpBlock2D(layers, c.TransformerLayersPerBlock[r], input, prevOutput, output, temb, !last,
                    c.NormNumGroups, c.NormEps, c.Dropout, c.NumAttentionHeads[r], c.CrossAttentionDim[r],
                    c.UseLinearProjection, c.UpcastAttention)
                : new UpBlock2D(layers, input, prevOutput, output, temb, !last, c.NormNumGroups, c.NormEps, c.Dropout));
        }
        for (int i = 0; i < ups.Count; i++) ups[i].Index = i;
        up_blocks = nn.ModuleList(ups.ToArray());

        conv_norm_out = Norms.GroupNorm(c.NormNumGroups, ch[0], c.NormEps);
        conv_out = nn.Conv2d(ch[0], c.OutChannels, c.ConvOutKernel, stride: 1, padding: (c.ConvOutKernel - 1) / 2);
        RegisterComponents();
    }

    /// <summary>Loads `config.json` and the safetensors weights of a diffusers `unet` folder.</summary>
    /// <param name="device">Where to build the network (default CPU).</param>
    /// <param name="dtype">Parameter dtype (default float32); weights are converted while streaming.</param>
    /// <param name="variant">A weight variant such as "fp16" (`diffusion_pytorch_model.fp16.safetensors`).</param>
    public static UNet2DConditionModel FromPretrained(string componentDir, Device? device = null, ScalarType? dtype = null,
        string? variant = null)
    {
        var config = UNet2DConditionConfig.Load(Path.Combine(componentDir, "config.json"));
        var files = WeightLoader.ResolveWeightFiles(componentDir, variant);
        return ModelConstruction.BuildLoaded(() => new UNet2DConditionModel(config), m => WeightLoader.Load(m, files), device, dtype);
    }

    /// <summary>
    /// Builds the network from <paramref name="config"/> and streams weights from open tensor sources (a folder's
    /// files, or a single-file checkpoint's UNet seen through its key map). The sources stay open.
    /// </summary>
    public static UNet2DConditionModel FromWeights(UNet2DConditionConfig config, IReadOnlyList<ITensorSource> sources,
        Device? device = null, ScalarType? dtype = null)
    {
        return ModelConstruction.BuildLoaded(() => new UNet2DConditionModel(config), m => WeightLoader.Load(m, sources), device, dtype);
    }

    /// <summary>Number of 2x upsamplers; latents whose sides are not multiples of 2^this use explicit sizes.</summary>
    public int NumUpsamplers => Config.NumBlocks - 1;

    public ScalarType DType => conv_in.weight!.dtype;
    /// <summary>Where the forward runs: the weights' device, or the one set for sequential offload (weights then
    /// sit on the CPU between layers).</summary>
    public Device Device => ExecutionDevice ?? conv_in.weight!.device;

    /// <summary>Set by sequential offload: the device inputs are moved to while the weights live elsewhere.</summary>
    public Device? ExecutionDevice { get; set; }

    /// <summary>The noise prediction (diffusers' `.sample`), shape (B, out_channels, H, W).</summary>
    /// <param name="sample">Latents (B, in_channels, H, W); any H, W ≥ 1.</param>
    /// <param name="timestep">A scalar, (1,) or (B,) tensor of timesteps.</param>
    /// <param name="encoderHiddenStates">Text states (B, L, cross_attention_dim).</param>
    /// <param name="added">SDXL's text_embeds and time_ids; required iff the config has `addition_embed_type: text_time`.</param>
    public Tensor Forward(Tensor sample, Tensor timestep, Tensor encoderHiddenStates, UNetAddedConditions? added = null,
        UNetForwardOptions? options = null)
    {
        CheckSample(sample);
        using var scope = torch.NewDisposeScope();
        var emb = TimeEmbedding(timestep, sample.shape[0], sample.dtype, added);
        return ForwardWithEmbedding(sample, emb, encoderHiddenStates, options).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The time embedding `emb` every resnet receives: time_embedding(time_proj(t)), plus, for text_time (SDXL),
    /// add_embedding(cat[text_embeds, add_time_proj(time_ids)]). Shape (batch, time_embed_dim), dtype
    /// <paramref name="dtype"/> (the sinusoidal features are computed in fp32 and cast, as diffusers does).
    /// </summary>
    public Tensor TimeEmbedding(Tensor timestep, long batch, ScalarType dtype, UNetAddedConditions? added = null)
    {
        using var scope = torch.NewDisposeScope();
        var t = timestep.to(Device);
        if (t.dim() == 0) t = t.reshape(1);
        if (t.dim() != 1 || (t.shape[0] != 1 && t.shape[0] != batch))
            throw new ArgumentException($"timestep must be a scalar, (1,) or ({batch},); got [{string.Join(",", timestep.shape)}]", nameof(timestep));
        t = t.expand(batch);
        var emb = time_embedding.call(time_proj.call(t).to_type(dtype));
        if (add_embedding is not null && add_time_proj is not null)
        {
            if (added is null)
                throw new ArgumentException("this UNet has addition_embed_type 'text_time' (SDXL): text_embeds and time_ids are required", nameof(added));
            var text = added.TextEmbeds.to(Device);
            var ids = added.TimeIds.to(Device);
            if (text.dim() != 2 || text.shape[0] != batch || ids.dim() != 2 || ids.shape[0] != batch)
                throw new ArgumentException($"text_embeds must be ({batch}, D) and time_ids ({batch}, k); got [{string.Join(",", text.shape)}] and [{string.Join(",", ids.shape)}]", nameof(added));
            long width = text.shape[1] + ids.shape[1] * add_time_proj.NumChannels;
            if (width != Config.ProjectionClassEmbeddingsInputDim)
                throw new ArgumentException($"text_embeds width {text.shape[1]} + {ids.shape[1]} time ids x {add_time_proj.NumChannels} = {width}, but projection_class_embeddings_input_dim is {Config.ProjectionClassEmbeddingsInputDim}", nameof(added));
            var timeEmbeds = add_time_proj.call(ids.flatten()).reshape(batch, -1);
            var addEmbeds = torch.cat([text.to_type(emb.dtype), timeEmbeds.to_type(emb.dtype)], -1);
            emb = emb + add_embedding.call(addEmbeds);
        }
        return emb.MoveToOuterDisposeScope();
    }

    /// <summary>The whole network given a precomputed <see cref="TimeEmbedding"/>.</summary>
    public Tensor ForwardWithEmbedding(Tensor sample, Tensor emb, Tensor encoderHiddenStates, UNetForwardOptions? options = null)
    {
        CheckSample(sample);
        CheckContext(encoderHiddenStates, sample.shape[0]);
        using var scope = torch.NewDisposeScope();
        var hook = options?.FeatureHook;
        var inputs = new UNetBlockInputs(emb, encoderHiddenStates, options?.Attention ?? AttentionOptions.Default, options?.LayerHook);
        var skips = new List<Tensor>();
        var x = RunEncoder(sample, inputs, hook, skips, downOutputs: null);

        // diffusers' forward_upsample_size: when a side is not a multiple of 2^upsamplers, each upsampler resizes
        // to the size of the skip tensor it will be concatenated with instead of doubling.
        long factor = 1L << NumUpsamplers;
        bool explicitSizes = sample.shape[2] % factor != 0 || sample.shape[3] % factor != 0;
        for (int i = 0; i < up_blocks.Count; i++)
        {
            var block = up_blocks[i];
            int m = block.NumResnets;
            var res = skips.GetRange(skips.Count - m, m);
            skips.RemoveRange(skips.Count - m, m);
            long[]? upsampleSize = i < up_blocks.Count - 1 && explicitSizes ? [skips[^1].shape[2], skips[^1].shape[3]] : null;
            x = block.Forward(x, res, inputs, upsampleSize);
            x = ApplyHook(hook, UNetBlockKind.Up, i, x, emb);
        }
        x = CpuConv2d.Forward(conv_out, F.silu(conv_norm_out.call(x)));
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Runs only conv_in, the down blocks and the mid block (the frozen encoder the Self-Cascade upsamplers read),
    /// returning the hidden state leaving each of them (after any hook replacement).
    /// </summary>
    public UNetEncoderFeatures ForwardEncoder(Tensor sample, Tensor emb, Tensor encoderHiddenStates, UNetForwardOptions? options = null)
    {
        CheckSample(sample);
        CheckContext(encoderHiddenStates, sample.shape[0]);
        using var scope = torch.NewDisposeScope();
        var inputs = new UNetBlockInputs(emb, encoderHiddenStates, options?.Attention ?? AttentionOptions.Default, options?.LayerHook);
        var downs = new List<Tensor>();
        var mid = RunEncoder(sample, inputs, options?.FeatureHook, skips: new List<Tensor>(), downOutputs: downs);
        foreach (var d in downs) d.MoveToOuterDisposeScope();
        return new UNetEncoderFeatures(downs, mid.MoveToOuterDisposeScope());
    }

    /// <summary>conv_in, down blocks (collecting skips), mid block; returns the mid block's output.</summary>
    private Tensor RunEncoder(Tensor sample, UNetBlockInputs inputs, IUNetFeatureHook? hook, List<Tensor> skips, List<Tensor>? downOutputs)
    {
        var x = sample;
        if (Config.CenterInputSample) x = x.mul(_two).sub(_one);
        x = CpuConv2d.Forward(conv_in, x);
        skips.Add(x);
        for (int i = 0; i < down_blocks.Count; i++)
        {
            var outputs = down_blocks[i].Forward(x, inputs);
            skips.AddRange(outputs);
            // The skips keep the block's own outputs; only the tensor going on to the next block is replaced.
            x = ApplyHook(hook, UNetBlockKind.Down, i, outputs[^1], inputs.Emb);
            downOutputs?.Add(x);
        }
        x = mid_block.Forward(x, inputs);
        return ApplyHook(hook, UNetBlockKind.Mid, 0, x, inputs.Emb);
    }

    private static Tensor ApplyHook(IUNetFeatureHook? hook, UNetBlockKind kind, int index, Tensor hidden, Tensor emb)
    {
        if (hook is null) return hidden;
        var replacement = hook.OnBlockOutput(kind, index, hidden, emb);
        if (replacement is null) return hidden;
        if (!replacement.shape.SequenceEqual(hidden.shape))
            throw new InvalidOperationException($"feature hook returned [{string.Join(",", replacement.shape)}] for {kind} block {index}, expected [{string.Join(",", hidden.shape)}]");
        return replacement;
    }

    private void CheckSample(Tensor sample)
    {
        if (sample.dim() != 4 || sample.shape[1] != Config.InChannels)
            throw new ArgumentException($"sample must be (B, {Config.InChannels}, H, W); got [{string.Join(",", sample.shape)}]", nameof(sample));
        if (sample.shape[0] < 1 || sample.shape[2] < 1 || sample.shape[3] < 1)
            throw new ArgumentException($"sample has an empty dimension: [{string.Join(",", sample.shape)}]", nameof(sample));
    }

    private void CheckContext(Tensor context, long batch)
    {
        long dim = Config.CrossAttentionDim[0];
        if (context.dim() != 3 || context.shape[0] != batch || context.shape[2] != dim)
            throw new ArgumentException($"encoder_hidden_states must be ({batch}, L, {dim}); got [{string.Join(",", context.shape)}]", "encoderHiddenStates");
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { _two.Dispose(); _one.Dispose(); }
        base.Dispose(disposing);
    }
}
