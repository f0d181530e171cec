using System.CommandLine;
using System.Text.Json;
using SelfCascade.Pipelines;
using SelfCascade.Runtime;

namespace SelfCascade.Cli.Commands;

/// <summary>`selfcascade plan --model DIR --size WxH`: the cascade's stages, steps and estimated cost, from configs only.</summary>
public static class PlanCommand
{
    public static Command Create(CliConsole console)
    {
        var model = ModelOption.Create();
        var size = new Option<string>("--size") { Description = "Target WIDTHxHEIGHT", Required = true };
        var steps = new Option<int>("--steps") { Description = "Steps per stage (later stages run steps x strength)", DefaultValueFactory = _ => 50 };
        var guidance = new Option<double?>("--guidance") { Description = "Guidance scale (default 7.5; SDXL 5.0)" };
        var numImages = new Option<int>("--num-images") { Description = "Images per prompt (memory estimate)", DefaultValueFactory = _ => 1 };
        var dtype = new Option<string>("--dtype") { Description = "fp32, fp16 or bf16 (memory estimate)", DefaultValueFactory = _ => "fp32" };
        var json = new Option<bool>("--json") { Description = "Print the plan as JSON" };
        var cascade = new CascadeOptions();
        var cmd = new Command("plan", "Show the self-cascade stages for a target size, with steps and estimated cost") { model, size, steps, guidance, numImages, dtype, json };
        cascade.AddTo(cmd);
        var hub = new HubCliOptions();
        hub.AddTo(cmd);
        var singleFile = new SingleFileCliOptions();
        singleFile.AddTo(cmd);
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var (w, h) = CliParsing.ParseSize(p.GetValue(size)!);
            var geometry = ModelGeometry.FromFolder(hub.Resolve(p, model, console), TorchRuntime.ParseDType(p.GetValue(dtype)), singleFile.Read(p));
            var settings = cascade.Read(p);
            var request = new GenerationRequest("") { Steps = p.GetValue(steps), Guidance = p.GetValue(guidance), NumImages = p.GetValue(numImages), Width = w, Height = h };
            var plan = CascadeGenerator.Plan(geometry, w, h, new CascadeRequest
            {
                Request = request, BaseSize = settings.BaseSize, PivotStrength = settings.PivotStrength, StageOverrides = settings.Overrides,
            });
            if (!p.GetValue(json))
            {
                console.Out.Write(plan.Describe());
                return 0;
            }
            console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                target = plan.Target.ToString(), native = plan.NativeSize, granularity = plan.Granularity,
                stages = plan.Stages.Select(s => new
                {
                    index = s.Index, width = s.Width, height = s.Height, steps = s.Steps, strength = s.Strength, unet_steps = s.DenoisingSteps,
                    start_index = s.StartIndex, guidance = s.GuidanceScale, cost = s.NativeStepCost, attention_aware_cost = s.AttentionAwareCost,
                }),
                total_unet_steps = plan.TotalDenoisingSteps, total_cost = plan.TotalNativeStepCost,
                total_attention_aware_cost = plan.TotalAttentionAwareCost,
                vae_decode_untiled_bytes = plan.VaeDecodeUntiledBytes, vae_decode_tiled_bytes = plan.VaeDecodeTiledBytes,
            }, CliConsole.Json));
            return 0;
        }));
        return cmd;
    }
}
