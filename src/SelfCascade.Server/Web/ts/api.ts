// The page's view of the server's native JSON API (docs/SERVER.md). Every URL the page uses is in this file.

export interface ModelInfo {
  name: string;
  family: string;
  nativeSize: number;
  defaultSteps?: number;
  defaultGuidance?: number;
  defaultPivotStrength?: number;
}

export interface ModelList {
  models: ModelInfo[];
  defaultModel?: string;
  schedulers: string[];
  methods: string[];
}

/** POST /api/jobs body (snake_case as the server reads it; unknown fields are refused there). */
export interface GenerateBody {
  model?: string;
  prompt: string;
  negative_prompt?: string;
  seed?: number;
  width?: number;
  height?: number;
  method?: string;
  scheduler?: string;
  steps?: number;
  guidance?: number;
  pivot_strength?: number;
}

/** POST /api/upscale body: a finished job's image, 2x or 4x per side. */
export interface UpscaleBody {
  model?: string;
  job_id: string;
  image_index?: number;
  scale: number;
  prompt?: string;
  negative_prompt?: string;
  seed?: number;
  steps?: number;
  guidance?: number;
  pivot_strength?: number;
}

export type JobStatus = "queued" | "running" | "done" | "failed" | "cancelled" | "interrupted";

export interface StageInfo {
  index: number;
  width: number;
  height: number;
  seconds?: number;
}

export interface JobInfo {
  id: string;
  kind: string;
  model: string;
  status: JobStatus;
  error?: string;
  params: Record<string, unknown>;
  width?: number;
  height?: number;
  seed?: number;
  createdAt?: string;
  stages: StageInfo[];
  totalSeconds?: number;
  /** The first image's URL (with the API key when there is one). */
  resultUrl?: string;
}

/** An error the server reported, with its own message. */
export class ApiError extends Error {
  constructor(message: string, readonly status: number) { super(message); }
}

/** The API key the page was opened with (/?api_key=KEY), kept for this tab; null when the server needs none. */
function apiKey(): string | null {
  const fromUrl = new URLSearchParams(location.search).get("api_key");
  if (fromUrl) sessionStorage.setItem("selfcascade-api-key", fromUrl);
  return fromUrl ?? sessionStorage.getItem("selfcascade-api-key");
}

function apiKeyHeaders(): Record<string, string> {
  const key = apiKey();
  return key ? { "X-API-Key": key } : {};
}

/** The API key as a query parameter, for URLs the browser fetches itself (img src, EventSource). */
export function withKey(url: string): string {
  const key = apiKey();
  return key ? `${url}${url.includes("?") ? "&" : "?"}api_key=${encodeURIComponent(key)}` : url;
}

async function request<T>(method: string, url: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: { ...apiKeyHeaders(), ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError("The server cannot be reached.", 0);
  }
  const text = await response.text();
  let json: unknown = undefined;
  if (text) {
    try { json = JSON.parse(text); } catch { /* not JSON: the text itself is the message */ }
  }
  if (!response.ok) throw new ApiError(errorMessage(json, text, response), response.status);
  return json as T;
}

/** The server's own words: {error}, {message} or RFC 7807 problem details ({title, detail, errors}). */
function errorMessage(json: unknown, text: string, response: Response): string {
  const prefix = `${response.status} ${response.statusText}`.trim();
  if (json && typeof json === "object") {
    const o = json as Record<string, unknown>;
    const err = o.error;
    if (typeof err === "string") return `${prefix}: ${err}`;
    if (err && typeof err === "object" && typeof (err as Record<string, unknown>).message === "string")
      return `${prefix}: ${(err as Record<string, unknown>).message}`;
    if (typeof o.message === "string") return `${prefix}: ${o.message}`;
    const parts = [o.title, o.detail].filter((x): x is string => typeof x === "string");
    if (o.errors && typeof o.errors === "object")
      for (const [k, v] of Object.entries(o.errors as Record<string, unknown>)) parts.push(`${k}: ${Array.isArray(v) ? v.join(", ") : String(v)}`);
    if (parts.length) return `${prefix}: ${parts.join(" — ")}`;
  }
  return text && text.length < 500 ? `${prefix}: ${text}` : prefix;
}

const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** A job record (the server's JobView) as the page uses it. */
export function toJob(raw: unknown): JobInfo {
  const o = raw as Record<string, unknown>;
  const images = Array.isArray(o.images) ? (o.images as unknown[]).filter((x): x is string => typeof x === "string") : [];
  const stages = Array.isArray(o.stages) ? (o.stages as Record<string, unknown>[]) : [];
  return {
    id: String(o.id),
    kind: str(o.kind) ?? "text-to-image",
    model: str(o.model) ?? "",
    status: (str(o.status) ?? "queued") as JobStatus,
    error: str(o.error),
    params: (o.parameters && typeof o.parameters === "object" ? o.parameters : {}) as Record<string, unknown>,
    width: num(o.width) || undefined,
    height: num(o.height) || undefined,
    seed: num(o.seed),
    createdAt: str(o.created_at),
    stages: stages.map(s => ({ index: num(s.index) ?? 0, width: num(s.width) ?? 0, height: num(s.height) ?? 0, seconds: num(s.seconds) })),
    totalSeconds: o.timings && typeof o.timings === "object" ? num((o.timings as Record<string, unknown>).total) : undefined,
    resultUrl: images.length ? withKey(images[0]) : undefined,
  };
}

export const eventsUrl = (id: string) => withKey(`/api/jobs/${encodeURIComponent(id)}/events`);

export async function listModels(): Promise<ModelList> {
  const raw = await request<Record<string, unknown>>("GET", "/api/models");
  const models = (Array.isArray(raw.models) ? raw.models : []) as Record<string, unknown>[];
  return {
    models: models.map(m => ({
      name: String(m.name), family: str(m.family) ?? "", nativeSize: num(m.native_size) ?? 512,
      defaultSteps: num(m.default_steps), defaultGuidance: num(m.default_guidance), defaultPivotStrength: num(m.default_pivot_strength),
    })),
    defaultModel: str(raw.default),
    schedulers: Array.isArray(raw.schedulers) ? raw.schedulers.map(String) : [],
    methods: Array.isArray(raw.methods) ? raw.methods.map(String) : [],
  };
}

export async function submitGenerate(body: GenerateBody): Promise<JobInfo> {
  return toJob(await request<unknown>("POST", "/api/jobs", body));
}

export async function submitUpscale(body: UpscaleBody): Promise<JobInfo> {
  return toJob(await request<unknown>("POST", "/api/upscale", body));
}

export async function getJob(id: string): Promise<JobInfo> {
  return toJob(await request<unknown>("GET", `/api/jobs/${encodeURIComponent(id)}`));
}

export async function listJobs(limit = 60): Promise<JobInfo[]> {
  const raw = await request<Record<string, unknown>>("GET", `/api/jobs?limit=${limit}`);
  return (Array.isArray(raw.jobs) ? raw.jobs : []).map(toJob);
}

/** The job running now and those waiting (GET /api/queue). */
export async function queue(): Promise<{ running?: JobInfo; queued: JobInfo[] }> {
  const raw = await request<Record<string, unknown>>("GET", "/api/queue");
  return { running: raw.running ? toJob(raw.running) : undefined, queued: (Array.isArray(raw.queued) ? raw.queued : []).map(toJob) };
}

export async function cancelJob(id: string): Promise<void> {
  await request<unknown>("POST", `/api/jobs/${encodeURIComponent(id)}/cancel`);
}
