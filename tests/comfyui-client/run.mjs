// Drives a SelfCascade server with @stable-canvas/comfyui-client (a published ComfyUI client, not ours):
// txt2img at the base size, LatentUpscaleBy x2 (bilinear), KSampler(denoise 0.7), VAEDecode, SaveImage, over the
// client's own WebSocket + REST flow (Workflow.invoke: POST /prompt, /ws events, /queue, then the image via /view).
// Usage: node run.mjs http://127.0.0.1:PORT CHECKPOINT SEED
// Prints one JSON line per event and a final {"result": ...} line. Run by ComfyNodeClientTests (xunit).
import { Client, Workflow } from "@stable-canvas/comfyui-client";
import WebSocket from "ws";
import { createHash } from "node:crypto";

const [base, ckpt, seedText] = process.argv.slice(2);
const seed = Number(seedText ?? "1");
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const timer = setTimeout(() => { out({ error: "timeout" }); process.exit(3); }, 240_000);

const client = new Client({ api_host: new URL(base).host, WebSocket, fetch: globalThis.fetch });
try {
  await client.connect();
  const stats = await client.getSystemStats();
  out({ event: "system_stats", comfyui_version: stats.system.comfyui_version });
  const samplers = await client.getSamplers();
  out({ event: "samplers", samplers });
  client.on("execution_start", (d) => out({ event: "execution_start", prompt_id: d.prompt_id }));
  client.on("executing", (d) => out({ event: "executing", node: d.node, prompt_id: d.prompt_id }));
  client.on("executed", (d) => out({ event: "executed", node: d.node, prompt_id: d.prompt_id }));
  client.on("status", (d) => out({ event: "status", queue_remaining: d?.exec_info?.queue_remaining }));
  // Registered before the prompt is queued, so it sees every step (the task's own hook below attaches only after
  // POST /prompt has answered, and a fast first sampler can be done by then).
  client.on("progress", (d) => out({ event: "progress", value: d.value, max: d.max, node: d.node, prompt_id: d.prompt_id }));

  const wf = new Workflow();
  const cls = wf.classes;
  const [model, clip, vae] = cls.CheckpointLoaderSimple({ ckpt_name: ckpt });
  const positive = cls.CLIPTextEncode({ text: "red heart", clip })[0];
  const negative = cls.CLIPTextEncode({ text: "", clip })[0];
  const [latent] = cls.EmptyLatentImage({ width: 32, height: 32, batch_size: 1 });
  const [low] = cls.KSampler({
    seed, steps: 10, cfg: 3, sampler_name: "ddim", scheduler: "normal", denoise: 1,
    model, positive, negative, latent_image: latent,
  });
  const [up] = cls.LatentUpscaleBy({ samples: low, upscale_method: "bilinear", scale_by: 2 });
  const [high] = cls.KSampler({
    seed: seed + 1, steps: 7, cfg: 3, sampler_name: "ddim", scheduler: "normal", denoise: 0.7,
    model, positive, negative, latent_image: up,
  });
  const [image] = cls.VAEDecode({ samples: high, vae });
  cls.SaveImage({ filename_prefix: "node-client", images: image });

  const result = await wf.invoke(client, {
    progress: (p) => out({ event: "task_progress", value: p.value, max: p.max, node: p.node, prompt_id: p.prompt_id }),
  });
  const images = [];
  for (const img of result.images) {
    const url = img.type === "url" ? img.data : null;
    if (!url) continue;
    const res = await fetch(url);
    const bytes = Buffer.from(await res.arrayBuffer());
    images.push({ url, status: res.status, bytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") });
  }
  out({ result: { images } });
  clearTimeout(timer);
  client.close();
  process.exit(0);
} catch (e) {
  out({ error: String(e?.stack ?? e) });
  clearTimeout(timer);
  process.exit(2);
}
