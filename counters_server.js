// Counter server: counts defect events per user and action.
//
//   deno run --allow-net counters_server.js [port]     (default port 8888)
//
// POST /  with {"user": <int>, "action": "create"|"delete"} -> 200, counted once
//         per Idempotency-Key header (a repeated key is answered 200, not recounted);
//         anything else -> 400 with a JSON error.
// GET  /  -> the counts, {"<user id>": {"create": n, "delete": m}}.
// Logs one line per event: arrival time (ISO 8601, UTC), user, action, key.
//
// Offline by design: no remote imports, only Deno.serve.

const port = Number(Deno.args[0] ?? 8888);
const counts = {};
const seenKeys = new Set();
const ACTIONS = new Set(["create", "delete"]);

function json(body, status = 200) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function validate(event) {
  if (event === null || typeof event !== "object" || Array.isArray(event)) {
    return "body must be a JSON object";
  }
  const keys = Object.keys(event).sort().join(",");
  if (keys !== "action,user") return 'body must have exactly the keys "user" and "action"';
  if (!Number.isInteger(event.user)) return '"user" must be an integer';
  if (!ACTIONS.has(event.action)) return '"action" must be "create" or "delete"';
  return null;
}

async function record(request) {
  let event;
  try {
    event = await request.json();
  } catch {
    return json({ error: "body is not valid JSON" }, 400);
  }
  const error = validate(event);
  if (error) return json({ error }, 400);
  const key = request.headers.get("idempotency-key");
  if (key !== null && seenKeys.has(key)) {
    console.log(`${new Date().toISOString()} duplicate ${key}: user ${event.user} ${event.action} (not counted)`);
    return json({ status: "duplicate" });
  }
  if (key !== null) seenKeys.add(key);
  const userCounts = (counts[event.user] ??= { create: 0, delete: 0 });
  userCounts[event.action] += 1;
  console.log(`${new Date().toISOString()} user ${event.user} ${event.action} (key ${key ?? "-"})`);
  return json({ status: "counted" });
}

Deno.serve({ port, hostname: "127.0.0.1" }, (request) => {
  const { pathname } = new URL(request.url);
  if (pathname !== "/") return json({ error: "not found" }, 404);
  if (request.method === "GET") return json(counts);
  if (request.method === "POST") return record(request);
  return json({ error: "method not allowed" }, 405);
});
