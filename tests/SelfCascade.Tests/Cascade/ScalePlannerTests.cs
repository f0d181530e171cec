using System.Text.Json;
using SelfCascade.Cascade;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Cascade;

public class ScalePlannerTests
{
    // Native edge and granularity of the families: SD 1.5 / 2.1-base 512 (8 * 2^3 = 64), SD 2.1-v 768, SDXL 1024 (8 * 2^2 = 32).
    private static ScalePlanOptions Sd15 => new() { NativeSize = 512, Granularity = CascadeMath.GranularityFromDownBlocks(8, 4) };
    private static ScalePlanOptions Sd21V => new() { NativeSize = 768, Granularity = 64 };
    private static ScalePlanOptions Sdxl => new() { NativeSize = 1024, Granularity = CascadeMath.GranularityFromDownBlocks(8, 3), GuidanceScale = 5.0 };

    private static ScalePlanOptions Model(string name) => name switch
    {
        "sd15" or "sd21" => Sd15,
        "sd21v" => Sd21V,
        "sdxl" => Sdxl,
        _ => throw new ArgumentException(name),
    };

    public static TheoryData<string, string, string> Cases => new()
    {
        // model, target, expected stages
        { "sd15", "512x512", "512x512" },
        { "sd15", "1024x1024", "512x512 1024x1024" },
        { "sd21", "2048x2048", "512x512 1024x1024 2048x2048" },
        { "sd21", "4096x4096", "512x512 1024x1024 2048x2048 4096x4096" },
        { "sd15", "3072x1536", "768x384 1536x768 3072x1536" },
        { "sd15", "1536x3072", "384x768 768x1536 1536x3072" },
        { "sd15", "1800x1200", "576x384 960x640 1800x1200" },
        { "sd15", "2048x1152", "704x384 1152x640 2048x1152" },
        { "sd15", "1920x1080", "704x384 1152x640 1920x1080" },
        { "sd15", "768x512", "768x512" },
        { "sd15", "4096x512", "1536x192 2560x320 4096x512" },
        { "sd21v", "768x768", "768x768" },
        { "sd21v", "1536x1536", "768x768 1536x1536" },
        { "sd21v", "2048x2048", "768x768 1280x1280 2048x2048" },
        { "sd21v", "1920x1080", "1024x576 1920x1080" },
        { "sdxl", "1024x1024", "1024x1024" },
        { "sdxl", "2048x2048", "1024x1024 2048x2048" },
        { "sdxl", "4096x4096", "1024x1024 2048x2048 4096x4096" },
        { "sdxl", "2048x1152", "1376x768 2048x1152" },
        { "sdxl", "1920x1080", "1376x768 1920x1080" },
        { "sdxl", "1080x1920", "768x1376 1080x1920" },
        { "sdxl", "3072x1536", "1536x768 3072x1536" },
        { "sdxl", "1800x1200", "1248x832 1800x1200" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Plans_the_expected_stages(string model, string target, string expected)
    {
        var o = Model(model);
        var plan = ScalePlanner.Plan(PixelSize.Parse(target), o);
        Assert.Equal(expected, string.Join(" ", plan.Stages.Select(s => s.Size.ToString())));
        AssertInvariants(plan, o, maxAspectError: 0.035);
        // The automatic base has about the native area.
        double area = plan.Base.Size.Pixels / (double)(o.NativeSize * o.NativeSize);
        Assert.InRange(area, o.MinBaseAreaRatio, o.MaxBaseAreaRatio);
    }

    /// <summary>A sweep of awkward targets (multiples of 8 only): every plan keeps the invariants.</summary>
    [Theory]
    [InlineData("sd15")]
    [InlineData("sd21v")]
    [InlineData("sdxl")]
    public void Every_target_in_a_sweep_keeps_the_invariants(string model)
    {
        var o = Model(model);
        int n = o.NativeSize, count = 0;
        for (int w = n; w <= 5 * n; w += 8 * 17)
        for (int h = n; h <= 5 * n; h += 8 * 13)
        {
            var plan = ScalePlanner.Plan(new PixelSize(w, h), o);
            // As close as the granularity allows: half a granule on the shorter side of the smallest stage.
            var b = plan.Base.Size;
            double bound = 0.5 * o.Granularity / Math.Min(b.Width, b.Height) + 0.05;
            AssertInvariants(plan, o, bound);
            count++;
        }
        Assert.True(count > 100);
    }

    private static void AssertInvariants(ScalePlan plan, ScalePlanOptions o, double maxAspectError)
    {
        var stages = plan.Stages;
        Assert.Equal(plan.Target, stages[^1].Size);
        for (int i = 0; i < stages.Count; i++)
        {
            var s = stages[i].Size;
            Assert.Equal(i, stages[i].Index);
            if (i < stages.Count - 1)
                Assert.True(s.Width % o.Granularity == 0 && s.Height % o.Granularity == 0, $"stage {i} {s} is not a multiple of {o.Granularity}");
            Assert.True(s.Width % 8 == 0 && s.Height % 8 == 0, $"stage {i} {s} is not a multiple of 8");
            double err = Math.Abs(s.Aspect / plan.Target.Aspect - 1);
            Assert.True(err <= maxAspectError, $"stage {i} {s}: aspect error {err:P2} > {maxAspectError:P2} for {plan.Target}");
            if (i == 0) continue;
            var p = stages[i - 1].Size;
            Assert.True(s.Width > p.Width || s.Height > p.Height, $"stage {i} {s} does not grow from {p}");
            Assert.True(s.Width <= 2 * p.Width && s.Height <= 2 * p.Height, $"stage {i} {s} is more than 2x per side of {p}");
            Assert.True(s.Pixels <= 4 * p.Pixels, $"stage {i} {s} is more than 4x the pixels of {p}");
            Assert.True(s.Width >= p.Width && s.Height >= p.Height, $"stage {i} {s} shrinks a side of {p}");
        }
    }

    [Fact]
    public void Design_example_sd21_512_to_2048_costs()
    {
        // docs/ARCHITECTURE.md §7: SD 2.1-base 512 -> 1024 -> 2048, 50 steps, strength 0.7: 50 + 35 + 35 UNet steps.
        var plan = ScalePlanner.Plan(new PixelSize(2048, 2048), Sd15 with { Steps = 50, Strength = 0.7, AttentionFraction = 0.09 });
        Assert.Equal([50, 35, 35], plan.Stages.Select(s => s.DenoisingSteps));
        Assert.Equal([0, 15, 15], plan.Stages.Select(s => s.StartIndex));
        Assert.Equal(120, plan.TotalDenoisingSteps);
        // Pixel-linear: 50*1 + 35*4 + 35*16.
        Assert.Equal([50.0, 140.0, 560.0], plan.Stages.Select(s => s.NativeStepCost));
        Assert.Equal(750.0, plan.TotalNativeStepCost, 9);
        // Attention-aware, a = 0.09: 50 + 35*(0.91*4 + 0.09*16) + 35*(0.91*16 + 0.09*256) = 50 + 177.8 + 1316.
        Assert.Equal(177.8, plan.Stages[1].AttentionAwareCost, 9);
        Assert.Equal(1316.0, plan.Stages[2].AttentionAwareCost, 9);
        Assert.Equal(1543.8, plan.TotalAttentionAwareCost, 9);
        Assert.All(plan.Stages, s => Assert.Equal(2, s.CfgBatch));
        // docs/ARCHITECTURE.md §9: the SD VAE decodes 2048² in ~9.7 GiB untiled (fp16); tiled it fits in well under 1 GiB.
        Assert.InRange(plan.VaeDecodeUntiledBytes / (double)(1L << 30), 9.6, 9.8);
        Assert.InRange(plan.VaeDecodeTiledBytes / (double)(1L << 30), 0.5, 1.0);
        // With no attention share the attention-aware cost is the pixel-linear one.
        var linear = ScalePlanner.Plan(new PixelSize(2048, 2048), Sd15 with { AttentionFraction = 0 });
        Assert.Equal(750.0, linear.TotalAttentionAwareCost, 9);
    }

    [Theory]
    [InlineData(50, 0.7, 35, 15)]
    [InlineData(10, 0.7, 7, 3)]
    [InlineData(50, 1.0, 50, 0)]
    [InlineData(30, 0.3, 9, 21)]
    [InlineData(100, 0.29, 28, 72)] // 100 * 0.29 = 28.999999999999996: Python's int() truncates to 28
    [InlineData(3, 0.3, 0, 3)]
    [InlineData(20, 0.55, 11, 9)]
    public void Img2img_step_count_matches_get_timesteps(int steps, double strength, int expected, int start)
    {
        Assert.Equal(expected, CascadeMath.Img2ImgSteps(steps, strength));
        Assert.Equal(start, CascadeMath.Img2ImgStartIndex(steps, strength));
    }

    [Fact]
    public void Img2img_steps_match_the_fixture_stage_timesteps()
    {
        // sd_tiny: 10 DDIM steps, strength 0.7 -> diffusers ran timesteps 601..1 (7 of 901..1, from index 3).
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.ParityPath("pipelines", "sd_tiny", "README.json")));
        var stage = doc.RootElement.GetProperty("stage");
        int steps = doc.RootElement.GetProperty("num_inference_steps").GetInt32();
        double strength = stage.GetProperty("strength").GetDouble();
        var ts = stage.GetProperty("timesteps").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(ts.Length, CascadeMath.Img2ImgSteps(steps, strength));
        // DDIM leading spacing, steps_offset 1: timesteps[i] = (steps - 1 - i) * (1000 / steps) + 1.
        int start = CascadeMath.Img2ImgStartIndex(steps, strength);
        Assert.Equal(ts[0], (steps - 1 - start) * (1000 / steps) + 1);
    }

    [Fact]
    public void Granularity_from_the_unet_layout()
    {
        Assert.Equal(64, CascadeMath.Granularity(8, 3));
        Assert.Equal(64, CascadeMath.GranularityFromDownBlocks(8, 4)); // SD 1.5 / 2.1: 4 down blocks, the last without downsampler
        Assert.Equal(32, CascadeMath.GranularityFromDownBlocks(8, 3)); // SDXL: 3 down blocks
        Assert.Equal(8, CascadeMath.GranularityFromDownBlocks(2, 3));  // the tiny test models (VAE factor 2)
        Assert.Throws<ArgumentOutOfRangeException>(() => CascadeMath.GranularityFromDownBlocks(8, 0));
    }

    [Fact]
    public void Stage_seeds_follow_design()
    {
        Assert.Equal([42L, 43L, 44L], Enumerable.Range(0, 3).Select(r => CascadeMath.StageSeed(42, r)));
    }

    [Fact]
    public void Target_equal_to_native_is_one_stage()
    {
        var plan = ScalePlanner.Plan(new PixelSize(512, 512), Sd15);
        Assert.Single(plan.Stages);
        Assert.Equal(50, plan.TotalDenoisingSteps);
        Assert.Equal(1.0, plan.Base.Strength);
    }

    [Fact]
    public void Explicit_base_is_stepped_to_the_target()
    {
        var plan = ScalePlanner.Plan(new PixelSize(2048, 2048), Sd21V with { BaseSize = new PixelSize(1024, 1024) });
        Assert.Equal("1024x1024 2048x2048", string.Join(" ", plan.Stages.Select(s => s.Size.ToString())));
        Assert.True(plan.BaseWasGiven);

        var far = ScalePlanner.Plan(new PixelSize(4096, 4096), Sd15 with { BaseSize = new PixelSize(640, 640) });
        Assert.Equal(4, far.Stages.Count); // 4096/640 = 6.4 -> 3 upscales
        AssertInvariants(far, Sd15, 0);

        var wide = ScalePlanner.Plan(new PixelSize(1920, 1080), Sd15 with { BaseSize = new PixelSize(896, 512) });
        AssertInvariants(wide, Sd15, 0.035);
        Assert.Equal(new PixelSize(896, 512), wide.Base.Size);

        var same = ScalePlanner.Plan(new PixelSize(1800, 1200), Sd15 with { BaseSize = new PixelSize(1800, 1200) });
        Assert.Single(same.Stages);
    }

    [Fact]
    public void Overrides_apply_per_stage()
    {
        var o = Sd15 with
        {
            StageOverrides = new Dictionary<int, StageSettings>
            {
                [0] = new(Steps: 30, GuidanceScale: 9.0),
                [2] = new(Steps: 20, Strength: 0.5, GuidanceScale: 1.0),
            },
        };
        var plan = ScalePlanner.Plan(new PixelSize(2048, 2048), o);
        Assert.Equal([30, 35, 10], plan.Stages.Select(s => s.DenoisingSteps));
        Assert.Equal([9.0, 7.5, 1.0], plan.Stages.Select(s => s.GuidanceScale));
        Assert.Equal([2, 2, 1], plan.Stages.Select(s => s.CfgBatch));
        Assert.Equal(0.5, plan.Stages[2].Strength);
    }

    public static TheoryData<string, string, string> Refusals => new()
    {
        // target, what changes, message fragment
        { "0x512", "", "must be positive" },
        { "-1024x1024", "", "must be positive" },
        { "1000x1004", "", "not divisible by 8" },
        { "1020x1024", "", "nearest: 1024x1024" },
        { "384x1024", "", "smaller than the model's native 512x512 in width" },
        { "1024x768", "sdxl", "smaller than the model's native 1024x1024 in height" },
        { "8704x1024", "", "exceeds 16x the native 512" },
        { "2048x2048", "strength0", "strength 0 is outside (0, 1]" },
        { "2048x2048", "strength1.2", "strength 1.2 is outside (0, 1]" },
        { "2048x2048", "strengthNaN", "is outside (0, 1]" },
        { "2048x2048", "budget", "of working memory for the UNet, more than the" },
        { "2048x2048", "base1000", "base size 1000x1000 is not a multiple of 64" },
        { "2048x2048", "base4096", "larger than the target" },
        { "2048x1152", "base512", "the stages would stretch the image" },
        { "2048x2048", "override5", "the plan has stages 0..2" },
        { "2048x2048", "basestrength", "the base stage starts from noise" },
        { "2048x2048", "fewsteps", "0 denoising steps" },
        { "2048x2048", "steps0", "0 steps" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Impossible_requests_are_refused_with_a_reason(string target, string change, string fragment)
    {
        var o = change switch
        {
            "sdxl" => Sdxl,
            "strength0" => Sd15 with { Strength = 0 },
            "strength1.2" => Sd15 with { Strength = 1.2 },
            "strengthNaN" => Sd15 with { Strength = double.NaN },
            "budget" => Sd15 with { MaxLatentBytes = 100_000 },
            "base1000" => Sd15 with { BaseSize = new PixelSize(1000, 1000) },
            "base4096" => Sd15 with { BaseSize = new PixelSize(4096, 4096) },
            "base512" => Sd15 with { BaseSize = new PixelSize(512, 512) },
            "override5" => Sd15 with { StageOverrides = new Dictionary<int, StageSettings> { [5] = new(Steps: 10) } },
            "basestrength" => Sd15 with { StageOverrides = new Dictionary<int, StageSettings> { [0] = new(Strength: 0.5) } },
            "fewsteps" => Sd15 with { StageOverrides = new Dictionary<int, StageSettings> { [1] = new(Steps: 1, Strength: 0.5) } },
            "steps0" => Sd15 with { Steps = 0 },
            _ => Sd15,
        };
        var parts = target.Split('x');
        var size = new PixelSize(int.Parse(parts[0]), int.Parse(parts[1]));
        var e = Assert.Throws<ScalePlanException>(() => ScalePlanner.Plan(size, o));
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void Sizes_parse_from_the_command_line_form()
    {
        Assert.Equal(new PixelSize(1024, 768), PixelSize.Parse("1024x768"));
        Assert.Equal(new PixelSize(2048, 1152), PixelSize.Parse(" 2048X1152 "));
        Assert.Equal(new PixelSize(512, 512), PixelSize.Parse("512"));
        foreach (var bad in new[] { "", "abc", "10x", "x10", "1x2x3", "-5x5", "1.5x2" })
            Assert.Throws<ArgumentException>(() => PixelSize.Parse(bad));
    }

    [Fact]
    public void Describe_lists_every_stage_and_the_totals()
    {
        var text = ScalePlanner.Plan(new PixelSize(1920, 1080), Sd15).Describe();
        Assert.Contains("1920x1080 from native 512x512", text);
        Assert.Contains("704x384", text);
        Assert.Contains("1152x640", text);
        Assert.Contains("35 (from #15)", text);
        Assert.Contains("total: 120 UNet steps", text);
        Assert.Contains("explicit upsample sizes", text);
        Assert.Contains("untiled", text);
    }
}
