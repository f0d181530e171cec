using SelfCascade.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary>Conversions shared by the metrics: images as float64 tensors in [0, 1], grayscale, antialiased resizing.</summary>
public static class ImageTensors
{
    /// <summary>An image as a (1, 3, H, W) float64 tensor in [0, 1]: <c>x = byte / 255</c>.</summary>
    public static Tensor ToUnit(RgbImage image)
    {
        using var scope = NewDisposeScope();
        var raw = tensor(image.Pixels, [image.Height, image.Width, 3]);
        var t = raw.permute(2, 0, 1).unsqueeze(0).to(ScalarType.Float64) / 255.0;
        return t.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A (1, 3, H, W) tensor in [-1, 1] (what <see cref="RgbImage.ToTensor"/> and the decoder give) mapped to
    /// float64 [0, 1]: <c>x/2 + 0.5</c>, clamped, so tensors and images are measured on the same scale.
    /// </summary>
    public static Tensor SignedToUnit(Tensor signed)
    {
        using var scope = NewDisposeScope();
        var t = signed.dim() == 3 ? signed.unsqueeze(0) : signed;
        if (t.dim() != 4 || t.shape[1] != 3) throw new ArgumentException($"expected a (1,3,H,W) or (3,H,W) image, got [{string.Join(",", signed.shape)}]");
        var unit = (t.detach().cpu().to(ScalarType.Float64) / 2.0 + 0.5).clamp(0.0, 1.0);
        return unit.MoveToOuterDisposeScope();
    }

    /// <summary>Rec. 601 luma of an (N, 3, H, W) tensor: <c>Y = 0.299 R + 0.587 G + 0.114 B</c>, shape (N, H, W).</summary>
    public static Tensor Luma(Tensor rgb)
    {
        using var scope = NewDisposeScope();
        var y = rgb[.., 0] * 0.299 + rgb[.., 1] * 0.587 + rgb[.., 2] * 0.114;
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Resizes (N, C, H, W) to (height, width) with antialiasing. Integer shrink factors (fy, fx) are an exact
    /// box (area) average: <c>out[i,j] = mean of the fy×fx input block</c>; any other size is bilinear
    /// (<c>align_corners=false</c>) with PyTorch's antialias filter when shrinking. Keeps the input dtype.
    /// </summary>
    public static Tensor ResizeAntialiased(Tensor images, int height, int width)
    {
        using var scope = NewDisposeScope();
        long h = images.shape[2], w = images.shape[3];
        Tensor result;
        if (h == height && w == width) result = images.alias();
        else if (h % height == 0 && w % width == 0)
            result = nn.functional.avg_pool2d(images, [h / height, w / width]);
        else
        {
            // PyTorch's antialiased bilinear kernel is implemented for float32 on every backend; compute there.
            var f = images.to(ScalarType.Float32);
            result = nn.functional.interpolate(f, [height, width], mode: InterpolationMode.Bilinear,
                align_corners: false, antialias: true).to(images.dtype);
        }
        return result.MoveToOuterDisposeScope();
    }
}
