using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Blocks;
using SelfCascade.Models.Unet;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Video.Unet3D;

/// <summary>
/// diffusers `UNet3DConditionModel` (ModelScope text-to-video-ms style) with diffusers' state-dict names: the image
/// UNet's resnets, spatial transformers, down/upsamplers and time embedding, plus a temporal convolution after every
/// resnet, a temporal transformer after every spatial one, and `transformer_in` after `conv_in`. Inputs and outputs
/// are videos (B, C, F, H, W); inside, frames are folded into the batch (B * F, C, h, w), index b * F + f, and the
/// time embedding and text states are repeated per frame.
/// </summary>
public sealed class UNet3DConditionModel : nn.Module, IVideoUNet
{
    private readonly Conv2d conv_in;
    private readonly Timesteps time_proj;
    private readonly TimestepEmbedding time_embedding;
    private readonly Unet3DTemporalTransformer transformer_in;
    private readonly ModuleList<Unet3DDownBlock> down_blocks;
    private readonly UNetMidBlock3DCrossAttn mid_block;
    private readonly ModuleList<Unet3DUpBlock> up_blocks;
    private readonly GroupNorm conv_norm_out;
    private readonly Conv2d conv_out;

    public UNet3DConditionConfig Config { get; }

    public UNet3DConditionModel(UNet3DConditionConfig config) : base(nameof(UNet3DConditionModel))
    {
        Config = config;
        var c = config;
        int n = c.NumBlocks;
        long temb = c.TimeEmbedDim;
        var ch = c.BlockOutChannels;
        long groups = c.NormNumGroups, headDim = c.AttentionHeadDim;

        conv_in = nn.Conv2d(c.InChannels, ch[0], 3, stride: 1, padding: 1);
        time_proj = new Timesteps(ch[0], flipSinToCos: true, downscaleFreqShift: 0);
        time_embedding = new TimestepEmbedding(ch[0], temb);
        transformer_in = new Unet3DTemporalTransformer(UNet3DConditionConfig.TransformerInHeads, headDim, ch[0], groups);

        var downs = new List<Unet3DDownBlock>();
        long output = ch[0];
        for (int i = 0; i < n; i++)
        {
            long input = output;
            output = ch[i];
            bool last = i == n - 1;
            downs.Add(c.DownBlockTypeNames[i] == "CrossAttnDownBlock3D"
                ? new CrossAttnDownBlock3D(c.LayersPerBlock, input, output, temb, !last, groups, c.NormEps, c.DownsamplePadding,
                    headDim, c.CrossAttentionDim)
                : new DownBlock3D(c.LayersPerBlock, input, output, temb, !last, groups, c.NormEps, c.DownsamplePadding));
        }
        down_blocks = nn.ModuleList(downs.ToArray());

        mid_block = new UNetMidBlock3DCrossAttn(ch[^1], temb, groups, c.NormEps, c.MidBlockScaleFactor, headDim, c.CrossAttentionDim);

        var ups = new List<Unet3DUpBlock>();
        output = ch[^1];
        for (int i = 0; i < n; i++)
        {
            int r = n - 1 - i;
            bool last = i == n - 1;
            long prevOutput = output;
            output = ch[r];
            long input = ch[Math.Max(r - 1, 0)];
            int layers = c.LayersPerBlock + 1;
            ups.Add(c.UpBlockTypeNames[i] == "CrossAttnUpBlock3D"
                ? new CrossAttnUpBlock3D(layers, input, prevOutput, output, temb, !last, groups, c.NormEps, headDim, c.CrossAttentionDim)
                : new UpBlock3D(layers, input, prevOutput, output, temb, !last, groups, c.NormEps));
        }
        up_blocks = nn.ModuleList(ups.ToArray());

        conv_norm_out = Norms.GroupNorm(groups, ch[0], c.NormEps);
        conv_out = nn.Conv2d(ch[0], c.OutChannels, 3, stride: 1, padding: 1);
        RegisterComponents();
    }

    /// <summary>
    /// Loads `config.json` and the safetensors weights of a diffusers `unet` folder. A config of another class, or
    /// weights of another layout, fail with one error naming every problem (<see cref="ConfigException"/>,
    /// <see cref="WeightLoadException"/>).
    /// </summary>
    public static UNet3DConditionModel FromPretrained(string componentDir, Device? device = null, ScalarType? dtype = null,
        string? variant = null)
    {
        var config = UNet3DConditionConfig.Load(Path.Combine(componentDir, "config.json"));
        var files = WeightLoader.ResolveWeightFiles(componentDir, variant);
        return ModelConstruction.BuildLoaded(() => new UNet3DConditionModel(config), m => WeightLoader.Load(m, files), device, dtype);
    }

    /// <summary>Builds the network from <paramref name="config"/> and streams weights from open tensor sources.</summary>
    public static UNet3DConditionModel FromWeights(UNet3DConditionConfig config, IReadOnlyList<ITensorSource> sources,
        Device? device = null, ScalarType? dtype = null)
    {
        return ModelConstruction.BuildLoaded(() => new UNet3DConditionModel(config), m => WeightLoader.Load(m, sources), device, dtype);
    }

    public int InChannels => Config.InChannels;
    public int OutChannels => Config.OutChannels;
    public int? SampleSize => Config.SampleSize;
    /// <summary>No learned frame positions: any number of frames (memory permitting).</summary>
    public int? MaxFrames => null;
    /// <summary>Number of 2x upsamplers; latents whose sides are not multiples of 2^this use explicit sizes.</summary>
    public int NumUpsamplers => Config.NumBlocks - 1;
    public ScalarType DType => conv_in.weight!.dtype;
    public Device Device => conv_in.weight!.device;

    /// <summary>The noise prediction (diffusers' `.sample`), (B, out_channels, F, H, W).</summary>
    /// <param name="sample">Latent videos (B, in_channels, F, H, W).</param>
    /// <param name="timestep">A scalar, (1,) or (B,) tensor of timesteps (one per video).</param>
    /// <param name="encoderHiddenStates">Text states (B, L, cross_attention_dim), one per video (repeated for its frames).</param>
    /// <param name="options">Feature hook (sees every block's (B * F, C, h, w) output and the per-frame `emb`) and
    /// the attn-scale baseline on the spatial self-attentions (the temporal attentions are never rescaled), or feature
    /// upsamplers prepared on this model's <see cref="SpatialImageUNet"/>.</param>
    // The one place the video options are read: a setting added to VideoUNetForwardOptions that this model cannot
    // honour must throw NotSupportedException here (IVideoUNet's rule).
    public Tensor Forward(Tensor sample, Tensor timestep, Tensor encoderHiddenStates, VideoUNetForwardOptions? options = null)
    {
        if (options?.LayerHook is not null)
            throw new NotSupportedException("UNet3DConditionModel has no per-layer hook (LayerHook is AnimateDiff's injection point)");
        CheckSample(sample);
        if (options?.Upsamplers is { } ups)
        {
            if (options.FeatureHook is not null)
                throw new NotSupportedException("a feature hook and feature upsamplers cannot be combined in one video UNet call");
            if (!SpatialImageUNet.IsCopyOf(ups.Unet, this))
                throw new ArgumentException("the feature upsamplers were prepared for another UNet than this UNet3D's spatial half (VideoPipeline.UpsamplerUNet)");
        }
        // The upsamplers per frame: the image hook with frames folded into the batch, its low-res branch the spatial
        // half's encoder on each frame (SpatialImageUNet), injected at the same block outputs as in the image UNet.
        using var upsamplerHook = options?.Upsamplers?.CreateHook(sample.shape[0], sample.shape[2]);
        return Forward(sample, timestep, encoderHiddenStates, new UNetForwardOptions
        {
            FeatureHook = (IUNetFeatureHook?)upsamplerHook ?? options?.FeatureHook,
            SelfAttentionEntropyRatio = options?.SelfAttentionEntropyRatio,
        });
    }

    /// <summary>As the <see cref="IVideoUNet"/> forward, with the image UNet's options (a fixed spatial logit scale too).</summary>
    public Tensor Forward(Tensor sample, Tensor timestep, Tensor encoderHiddenStates, UNetForwardOptions options)
    {
        CheckSample(sample);
        long b = sample.shape[0], frames = sample.shape[2];
        if (encoderHiddenStates.dim() != 3 || encoderHiddenStates.shape[0] != b || encoderHiddenStates.shape[2] != Config.CrossAttentionDim)
            throw new ArgumentException($"encoder_hidden_states must be ({b}, L, {Config.CrossAttentionDim}); got [{string.Join(",", encoderHiddenStates.shape)}]", nameof(encoderHiddenStates));
        using var scope = torch.NewDisposeScope();
        var emb = TimeEmbedding(timestep, b, sample.dtype).repeat_interleave(frames, 0);
        var context = encoderHiddenStates.to(Device).repeat_interleave(frames, 0);
        var hook = options.FeatureHook;
        var inputs = new UNetBlockInputs(emb, context, options.Attention);

        var x = ForwardInput(sample);
        var skips = new List<Tensor> { x };
        for (int i = 0; i < down_blocks.Count; i++)
        {
            var outputs = down_blocks[i].Forward(x, inputs, frames);
            skips.AddRange(outputs);
            // As in the image UNet: the skips keep the block's own outputs; only the tensor going on is replaced.
            x = ApplyHook(hook, UNetBlockKind.Down, i, outputs[^1], emb);
        }
        x = ApplyHook(hook, UNetBlockKind.Mid, 0, mid_block.Forward(x, inputs, frames), emb);

        long factor = 1L << NumUpsamplers;
        bool explicitSizes = sample.shape[3] % factor != 0 || sample.shape[4] % factor != 0;
        for (int i = 0; i < up_blocks.Count; i++)
        {
            var block = up_blocks[i];
            int m = block.NumResnets;
            var res = skips.GetRange(skips.Count - m, m);
            skips.RemoveRange(skips.Count - m, m);
            long[]? upsampleSize = i < up_blocks.Count - 1 && explicitSizes ? [skips[^1].shape[2], skips[^1].shape[3]] : null;
            x = block.Forward(x, res, inputs, frames, upsampleSize);
            x = ApplyHook(hook, UNetBlockKind.Up, i, x, emb);
        }
        x = conv_out.call(F.silu(conv_norm_out.call(x)));
        return VideoLayout.ToVideo(x, frames).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>`conv_in` then `transformer_in` on a video (B, C, F, H, W): the first hidden state, (B * F, C0, H, W).</summary>
    public Tensor ForwardInput(Tensor sample)
    {
        CheckSample(sample);
        using var scope = torch.NewDisposeScope();
        long frames = sample.shape[2];
        var x = conv_in.call(VideoLayout.ToFrames(sample.to(Device)));
        return transformer_in.Forward(x, frames).MoveToOuterDisposeScope();
    }

    /// <summary>time_embedding(time_proj(t)) for each video, (B, time_embed_dim), before the per-frame repeat.</summary>
    public Tensor TimeEmbedding(Tensor timestep, long batch, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var t = timestep.to(Device);
        if (t.dim() == 0) t = t.reshape(1);
        if (t.dim() != 1 || (t.shape[0] != 1 && t.shape[0] != batch))
            throw new ArgumentException($"timestep must be a scalar, (1,) or ({batch},); got [{string.Join(",", timestep.shape)}]", nameof(timestep));
        return time_embedding.call(time_proj.call(t.expand(batch)).to_type(dtype)).MoveToOuterDisposeScope();
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
        if (sample.dim() != 5 || sample.shape[1] != Config.InChannels)
            throw new ArgumentException($"sample must be a video (B, {Config.InChannels}, F, H, W); got [{string.Join(",", sample.shape)}]", nameof(sample));
        if (sample.shape.Any(s => s < 1))
            throw new ArgumentException($"sample has an empty dimension: [{string.Join(",", sample.shape)}]", nameof(sample));
    }
}
