using System.Text.Json;
using System.Text.Json.Nodes;
using SelfCascade.IO;
using SelfCascade.Schedulers;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Schedulers;

/// <summary>Reads schedulers/schedulers.json and replays make_fixtures.py's sampling loop.</summary>
internal static class SchedulerFixtures
{
    private static readonly Lazy<JsonObject> Json = new(() =>
        JsonNode.Parse(File.ReadAllText(Fixtures.ParityPath("schedulers", "schedulers.json")))!.AsObject());

    public static IEnumerable<string> Names => Json.Value["schedulers"]!.AsObject().Select(kv => kv.Key);

    public static JsonObject Entry(string name) => Json.Value["schedulers"]![name]!.AsObject();

    public static JsonObject Run(string name, int steps) => Entry(name)["runs"]![steps.ToString()]!.AsObject();

    /// <summary>The fixture's config with its class as _class_name, read through SchedulerConfig.FromJson.</summary>
    public static SchedulerConfig Config(string name)
    {
        var e = Entry(name);
        var cfg = e["config"]!.DeepClone().AsObject();
        cfg["_class_name"] = e["class"]!.GetValue<string>();
        using var doc = JsonDocument.Parse(cfg.ToJsonString());
        return SchedulerConfig.FromJson(new ConfigJson(doc.RootElement, $"schedulers.json:{name}"));
    }

    public static NoiseScheduler Create(string name) => SchedulerFactory.Create(Config(name));

    public static bool UsesGenerator(string name) => name is "euler_a" or "ddpm";

    public static Tensor Randn(ulong seed)
    {
        using var g = new Generator(seed);
        return randn([1, 4, 8, 8], generator: g);
    }

    /// <summary>make_fixtures.py's stand-in UNet: 0.8 * sin(1.3 * xin + t / 1000).</summary>
    public static Tensor StandIn(Tensor xin, double t)
    {
        using var s13 = 1.3.ToScalar();
        using var tt = (t / 1000.0).ToScalar();
        using var s08 = 0.8.ToScalar();
        using var a = xin.mul(s13);
        using var b = a.add(tt);
        using var c = b.sin();
        return c.mul(s08);
    }

    /// <summary>The fixture loop: x = randn(seed 0) * init_noise_sigma, then scale / stand-in / step over every timestep.
    /// Returns (scaled input 0, x after step 0, final x).</summary>
    public static (Tensor scaled0, Tensor after0, Tensor final) Sample(NoiseScheduler s, string name)
    {
        using var g = UsesGenerator(name) ? new Generator(3) : null;
        using var x0 = Randn(0);
        using var sigma = s.InitNoiseSigma.ToScalar();
        // init_noise_sigma is a float32 0-d tensor for the sigma schedulers: multiply in float32
        var x = x0.mul(sigma);
        Tensor? scaled0 = null, after0 = null;
        for (int i = 0; i < s.Timesteps.Count; i++)
        {
            double t = s.Timesteps[i];
            using var scope = NewDisposeScope();
            var xin = s.ScaleModelInput(x, t);
            var eps = StandIn(xin, t);
            var next = s.Step(eps, t, x, g);
            if (i == 0)
            {
                scaled0 = xin.clone().DetachFromDisposeScope();
                after0 = next.clone().DetachFromDisposeScope();
            }
            next.DetachFromDisposeScope();
            x.Dispose();
            x = next;
        }
        return (scaled0!, after0!, x);
    }
}
