using SelfCascade.IO;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Video.Unet3D;

/// <summary>shared/fixtures/diffusers-video/modelscope_tiny (FIXTURES.md there) and the parity components it points to.</summary>
internal static class Unet3DFixtures
{
    public static string VideoRoot => Path.Combine(Fixtures.Shared, "fixtures", "diffusers-video");
    public static string ModelScope(params string[] parts) => Path.Combine([VideoRoot, "modelscope_tiny", .. parts]);
    public static SafeTensorsFile Open(params string[] parts) => SafeTensorsFile.Open(ModelScope(parts));
}
