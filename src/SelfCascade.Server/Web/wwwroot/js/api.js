// The page's view of the server's native JSON API (docs/SERVER.md). Every URL the page uses is in this file.
/** An error the server reported, with its own message. */
export class ApiError extends Error {
    status;
    constructor(message, status) {
        super(message);
        this.status = status;
    }
}
/** The API key the page was opened with (/?api_key=KEY), kept for this tab; null when the server needs none. */
function apiKey() {
    const fromUrl = new URLSearchParams(location.search).get("api_key");
    if (fromUrl)
        sessionStorage.setItem("selfcascade-api-key", fromUrl);
    return fromUrl ?? sessionStorage.getItem("selfcascade-api-key");
}
function apiKeyHeaders() {
    const key = apiKey();
    return key ? { "X-API-Key": key } : {};
}
/** The API key as a query parameter, for URLs the browser fetches itself (img src, EventSource). */
export function withKey(url) {
    const key = apiKey();
    return key ? `${url}${url.includes("?") ? "&" : "?"}api_key=${encodeURIComponent(key)}` : url;
}
async function request(method, url, body) {
    let response;
    try {
        response = await fetch(url, {
            method,
            headers: { ...apiKeyHeaders(), ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
    }
    catch {
        throw new ApiError("The server cannot be reached.", 0);
    }
    const text = await response.text();
    let json = undefined;
    if (text) {
        try {
            json = JSON.parse(text);
        }
        catch { /* not JSON: the text itself is the message */ }
    }
    if (!response.ok)
        throw new ApiError(errorMessage(json, text, response), response.status);
    return json;
}
/** The server's own words: {error}, {message} or RFC 7807 problem details ({title, detail, errors}). */
function errorMessage(json, text, response) {
    const prefix = `${response.status} ${response.statusText}`.trim();
    if (json && typeof json === "object") {
        const o = json;
        const err = o.error;
        if (typeof err === "string")
            return `${prefix}: ${err}`;
        if (err && typeof err === "object" && typeof err.message === "string")
            return `${prefix}: ${err.message}`;
        if (typeof o.message === "string")
            return `${prefix}: ${o.message}`;
        const parts = [o.title, o.detail].filter((x) => typeof x === "string");
        if (o.errors && typeof o.errors === "object")
            for (const [k, v] of Object.entries(o.errors))
                parts.push(`${k}: ${Array.isArray(v) ? v.join(", ") : String(v)}`);
        if (parts.length)
            return `${prefix}: ${parts.join(" — ")}`;
    }
    return text && text.length < 500 ? `${prefix}: ${text}` : prefix;
}
const num = (v) => (typeof v === "number" ? v : undefined);
const str = (v) => (typeof v === "string" ? v : undefined);
/** A job record (the server's JobView) as the page uses it. */
export function toJob(raw) {
    const o = raw;
    const images = Array.isArray(o.images) ? o.images.filter((x) => typeof x === "string") : [];
    const stages = Array.isArray(o.stages) ? o.stages : [];
    return {
        id: String(o.id),
        kind: str(o.kind) ?? "text-to-image",
        model: str(o.model) ?? "",
        status: (str(o.status) ?? "queued"),
        error: str(o.error),
        params: (o.parameters && typeof o.parameters === "object" ? o.parameters : {}),
        width: num(o.width) || undefined,
        height: num(o.height) || undefined,
        seed: num(o.seed),
        createdAt: str(o.created_at),
        stages: stages.map(s => ({ index: num(s.index) ?? 0, width: num(s.width) ?? 0, height: num(s.height) ?? 0, seconds: num(s.seconds) })),
        totalSeconds: o.timings && typeof o.timings === "object" ? num(o.timings.total) : undefined,
        resultUrl: images.length ? withKey(images[0]) : undefined,
    };
}
export const eventsUrl = (id) => withKey(`/api/jobs/${encodeURIComponent(id)}/events`);
export async function listModels() {
    const raw = await request("GET", "/api/models");
    const models = (Array.isArray(raw.models) ? raw.models : []);
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
export async function submitGenerate(body) {
    return toJob(await request("POST", "/api/jobs", body));
}
export async function submitUpscale(body) {
    return toJob(await request("POST", "/api/upscale", body));
}
export async function getJob(id) {
    return toJob(await request("GET", `/api/jobs/${encodeURIComponent(id)}`));
}
export async function listJobs(limit = 60) {
    const raw = await request("GET", `/api/jobs?limit=${limit}`);
    return (Array.isArray(raw.jobs) ? raw.jobs : []).map(toJob);
}
/** The job running now and those waiting (GET /api/queue). */
export async function queue() {
    const raw = await request("GET", "/api/queue");
    return { running: raw.running ? toJob(raw.running) : undefined, queued: (Array.isArray(raw.queued) ? raw.queued : []).map(toJob) };
}
export async function cancelJob(id) {
    await request("POST", `/api/jobs/${encodeURIComponent(id)}/cancel`);
}
