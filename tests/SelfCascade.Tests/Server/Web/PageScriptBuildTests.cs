using System.Diagnostics;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Server.Web;

/// <summary>
/// The page's JavaScript is committed compiled (users need no build step), so CI checks it is what its TypeScript
/// compiles to: the pinned compiler (src/SelfCascade.Server/Web/package-lock.json; `.ci/run` runs `npm ci` there)
/// writes ts/*.ts to a temporary folder and every file must equal wwwroot/js byte for byte. Fails (does not skip)
/// when node or the compiler is missing.
/// </summary>
public class PageScriptBuildTests
{
    private static string WebDir => Path.Combine(Fixtures.RepoRoot, "src", "SelfCascade.Server", "Web");

    [Fact]
    public async Task CommittedScriptsAreTheCompiledTypeScript()
    {
        var node = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, "node")).FirstOrDefault(File.Exists);
        Assert.True(node is not null, "node is not installed (CI: .ci/run installs nodejs)");
        var tsc = Path.Combine(WebDir, "node_modules", "typescript", "bin", "tsc");
        Assert.True(File.Exists(tsc), $"the TypeScript compiler is missing: run `npm ci` in {WebDir} (.ci/run does)");

        var outDir = Directory.CreateTempSubdirectory("sc-page-js-").FullName;
        try
        {
            var psi = new ProcessStartInfo(node!) { WorkingDirectory = WebDir, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { tsc, "-p", "tsconfig.json", "--outDir", outDir }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            using (var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3)))
                await p.WaitForExitAsync(cts.Token);
            Assert.True(p.ExitCode == 0, $"tsc exited {p.ExitCode}: {await stdout}\n{await stderr}");

            var committed = Directory.GetFiles(Path.Combine(WebDir, "wwwroot", "js"), "*.js").Select(Path.GetFileName).Order().ToList();
            var compiled = Directory.GetFiles(outDir, "*.js").Select(Path.GetFileName).Order().ToList();
            Assert.Equal(compiled, committed);
            Assert.NotEmpty(compiled);
            foreach (var name in compiled)
                Assert.True(File.ReadAllBytes(Path.Combine(outDir, name!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(WebDir, "wwwroot", "js", name!))),
                    $"wwwroot/js/{name} is not what ts/ compiles to: run `npm run build` in {WebDir} and commit the result");
        }
        finally { Directory.Delete(outDir, recursive: true); }
    }
}
