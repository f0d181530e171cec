using SelfCascade.Models.Unet;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Video.Models;

/// <summary>
/// diffusers `UNetMotionModel.from_unet2d(unet, motion_adapter)` run on our image UNet, not a copy of it: the
/// frames are folded into the batch, the time embedding and the text states are repeated per frame, and the
/// adapter's motion modules run through <see cref="IUNetLayerHook"/> where diffusers' motion blocks run them
/// (after each resnet [+ spatial attention] layer of every down and up block, and after the mid block's attention,
/// before its second resnet, when the adapter has a mid block). The spatial weights stay the image UNet's.
/// Neither network is owned: dispose them yourself (the video pipeline does).
/// </summary>
public sealed class UNetMotionModel : IVideoUNet
{
    public UNet2DConditionModel Unet { get; }
    public MotionAdapter Adapter { get; }

    public UNetMotionModel(UNet2DConditionModel unet, MotionAdapter adapter)
    {
        CheckFits(unet.Config, adapter.Config);
        Unet = unet;
        Adapter = adapter;
    }

    public int InChannels => Unet.Config.InChannels;
    public int? MaxFrames => Adapter.MaxFrames;
    public int NumUpsamplers => Unet.NumUpsamplers;
    public Device Device => Unet.Device;
    public ScalarType DType => Unet.DType;

    public Tensor Forward(Tensor sample, Tensor timestep, Tensor encoderHiddenStates, VideoUNetForwardOptions? options = null)
    {
        VideoFrames.Check(sample);
        if (sample.shape[1] != InChannels)
            throw new ArgumentException($"sample must be (B, {InChannels}, F, h, w); got [{string.Join(",", sample.shape)}]", nameof(sample));
        long b = sample.shape[0];
        int frames = (int)sample.shape[2];
        VideoFrames.Validate(frames, MaxFrames);
        if (encoderHiddenStates.dim() != 3 || encoderHiddenStates.shape[0] != b)
            throw new ArgumentException($"encoder_hidden_states must be ({b}, L, D), one per video; got [{string.Join(",", encoderHiddenStates.shape)}]", nameof(encoderHiddenStates));
        using var scope = torch.NewDisposeScope();
        var x = VideoFrames.Fold(sample);
        var emb = Unet.TimeEmbedding(timestep, b, x.dtype).repeat_interleave(frames, 0);
        var context = encoderHiddenStates.to(Unet.Device).repeat_interleave(frames, 0);
        if (options?.Upsamplers is { } ups)
        {
            if (options.FeatureHook is not null)
                throw new NotSupportedException("a feature hook and feature upsamplers cannot be combined in one video UNet call");
            if (!ReferenceEquals(ups.Unet, Unet))
                throw new ArgumentException("the feature upsamplers were prepared for another UNet than this motion model's");
        }
        // The upsamplers: the image hook with frames folded into the batch (the low-res branch is the image encoder per frame).
        using var upsamplerHook = options?.Upsamplers?.CreateHook(b, frames);
        var unetOptions = new UNetForwardOptions
        {
            LayerHook = new MotionLayerHook(Adapter, frames, options?.LayerHook),
            FeatureHook = (IUNetFeatureHook?)upsamplerHook ?? options?.FeatureHook,
            SelfAttentionEntropyRatio = options?.SelfAttentionEntropyRatio,
        };
        var y = Unet.ForwardWithEmbedding(x, emb, context, unetOptions);
        return VideoFrames.Unfold(y, frames).MoveToOuterDisposeScope();
    }

    /// <summary>One clear error when the adapter was made for another UNet (diffusers fails in load_state_dict).</summary>
    public static void CheckFits(UNet2DConditionConfig unet, MotionAdapterConfig adapter)
    {
        var problems = new List<string>();
        if (!unet.BlockOutChannels.SequenceEqual(adapter.BlockOutChannels))
            problems.Add($"block_out_channels [{string.Join(",", adapter.BlockOutChannels)}] vs the UNet's [{string.Join(",", unet.BlockOutChannels)}]");
        else
        {
            for (int i = 0; i < unet.NumBlocks; i++)
                if (unet.LayersPerBlock[i] != adapter.MotionLayersPerBlock)
                    problems.Add($"down block {i}: {adapter.MotionLayersPerBlock} motion layers vs {unet.LayersPerBlock[i]} resnets");
            // The image UNet's mid block has one attention layer.
            if (adapter.UseMotionMidBlock && adapter.MotionMidBlockLayersPerBlock != 1)
                problems.Add($"mid block: {adapter.MotionMidBlockLayersPerBlock} motion layers vs 1 attention layer");
            foreach (var c in unet.BlockOutChannels.Where(c => c % unet.NormNumGroups != 0))
                problems.Add($"{c} channels are not divisible by the UNet's {unet.NormNumGroups} norm groups");
        }
        if (unet.HasTextTimeEmbedding)
            problems.Add("the UNet is SDXL-style (text_time); AnimateDiff-SDXL adapters are not supported");
        if (problems.Count > 0)
            throw new MotionAdapterLayoutException("the motion adapter does not fit the UNet: " + string.Join("; ", problems));
    }
}

/// <summary>Runs the adapter's motion module for each layer the image UNet reports (see <see cref="UNetMotionModel"/>).</summary>
internal sealed class MotionLayerHook(MotionAdapter adapter, int frames, IUNetLayerHook? after) : IUNetLayerHook
{
    public Tensor? OnLayerOutput(UNetBlockKind kind, int block, int layer, Tensor hidden)
    {
        var moved = kind switch
        {
            UNetBlockKind.Down => adapter.Down(block)[layer].Forward(hidden, frames),
            UNetBlockKind.Up => adapter.Up(block)[layer].Forward(hidden, frames),
            _ => adapter.Mid is { } mid ? mid[layer].Forward(hidden, frames) : null,
        };
        return after?.OnLayerOutput(kind, block, layer, moved ?? hidden) ?? moved;
    }
}
