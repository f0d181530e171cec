using SelfCascade.Models.Unet;
using SelfCascade.Tests.Support;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Unet;

/// <summary>One case of a tiny UNet fixture: the model and its inputs (the caller's dispose scope owns the tensors).</summary>
internal sealed record UNetCase(Tensor Sample, Tensor Timestep, Tensor Context, UNetAddedConditions? Added)
{
    public static UNetCase Read(string model, int c)
    {
        using var io = Parity.Open("models", model, "io.safetensors");
        UNetAddedConditions? added = io.Entries.ContainsKey($"c{c}_text_embeds")
            ? new UNetAddedConditions(io.Read($"c{c}_text_embeds"), io.Read($"c{c}_time_ids"))
            : null;
        return new UNetCase(io.Read($"c{c}_sample"), io.Read($"c{c}_timestep"), io.Read($"c{c}_encoder_hidden_states"), added);
    }

    public static UNet2DConditionModel Model(string model, ScalarType? dtype = null) =>
        UNet2DConditionModel.FromPretrained(Fixtures.ParityPath("models", model), dtype: dtype);
}
