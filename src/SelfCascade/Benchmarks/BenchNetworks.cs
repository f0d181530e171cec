namespace SelfCascade.Benchmarks;

/// <summary>
/// Network shapes for `bench gpu`: the real diffusers configs of SD 2.1-base's and SDXL-base's UNets and the SD VAE
/// (shared/fixtures/diffusers-parity/arch, embedded so the GPU bundle needs no files), and tiny stand-ins of the
/// same layouts for the CPU smoke run. Weights are random: a forward's speed does not depend on their values.
/// </summary>
public static class BenchNetworks
{
    public const string Sd21BaseUnet = """
    {"sample_size":64,"in_channels":4,"out_channels":4,"flip_sin_to_cos":true,"freq_shift":0,
     "down_block_types":["CrossAttnDownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D","DownBlock2D"],
     "mid_block_type":"UNetMidBlock2DCrossAttn","up_block_types":["UpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D"],
     "block_out_channels":[320,640,1280,1280],"layers_per_block":2,"norm_num_groups":32,"norm_eps":1e-05,"cross_attention_dim":1024,
     "attention_head_dim":[5,10,20,20],"use_linear_projection":true}
    """;

    public const string SdxlBaseUnet = """
    {"sample_size":128,"in_channels":4,"out_channels":4,"flip_sin_to_cos":true,"freq_shift":0,
     "down_block_types":["DownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D"],
     "mid_block_type":"UNetMidBlock2DCrossAttn","up_block_types":["CrossAttnUpBlock2D","CrossAttnUpBlock2D","UpBlock2D"],
     "block_out_channels":[320,640,1280],"layers_per_block":2,"norm_num_groups":32,"norm_eps":1e-05,"cross_attention_dim":2048,
     "transformer_layers_per_block":[1,2,10],"attention_head_dim":[5,10,20],"use_linear_projection":true,
     "addition_embed_type":"text_time","addition_time_embed_dim":256,"projection_class_embeddings_input_dim":2816}
    """;

    public const string SdVae = """
    {"in_channels":3,"out_channels":3,"down_block_types":["DownEncoderBlock2D","DownEncoderBlock2D","DownEncoderBlock2D","DownEncoderBlock2D"],
     "up_block_types":["UpDecoderBlock2D","UpDecoderBlock2D","UpDecoderBlock2D","UpDecoderBlock2D"],
     "block_out_channels":[128,256,512,512],"layers_per_block":2,"latent_channels":4,"norm_num_groups":32,"sample_size":512,
     "scaling_factor":0.18215,"force_upcast":true}
    """;

    // ---- tiny stand-ins (same block layouts) for the CPU smoke run

    public const string TinySd21Unet = """
    {"sample_size":8,"in_channels":4,"out_channels":4,"flip_sin_to_cos":true,"freq_shift":0,
     "down_block_types":["CrossAttnDownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D","DownBlock2D"],
     "up_block_types":["UpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D"],
     "block_out_channels":[32,32,64,64],"layers_per_block":1,"norm_num_groups":32,"cross_attention_dim":32,
     "attention_head_dim":[1,1,2,2],"use_linear_projection":true}
    """;

    public const string TinySdxlUnet = """
    {"sample_size":16,"in_channels":4,"out_channels":4,"flip_sin_to_cos":true,"freq_shift":0,
     "down_block_types":["DownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D"],
     "up_block_types":["CrossAttnUpBlock2D","CrossAttnUpBlock2D","UpBlock2D"],
     "block_out_channels":[32,32,64],"layers_per_block":1,"norm_num_groups":32,"cross_attention_dim":32,
     "transformer_layers_per_block":[1,1,2],"attention_head_dim":[1,1,2],"use_linear_projection":true,
     "addition_embed_type":"text_time","addition_time_embed_dim":8,"projection_class_embeddings_input_dim":80}
    """;

    public const string TinyVae = """
    {"in_channels":3,"out_channels":3,"down_block_types":["DownEncoderBlock2D","DownEncoderBlock2D","DownEncoderBlock2D","DownEncoderBlock2D"],
     "up_block_types":["UpDecoderBlock2D","UpDecoderBlock2D","UpDecoderBlock2D","UpDecoderBlock2D"],
     "block_out_channels":[32,32,32,32],"layers_per_block":1,"latent_channels":4,"norm_num_groups":32,"sample_size":64,
     "scaling_factor":0.18215}
    """;
}
